import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, copySuite, readJson, shippedJson, tempDir, writeRun } from './helpers.ts';

interface CurveJson {
  steps: number[];
  loss: number[];
  [k: string]: number[];
}

const gpt2Curve = (): CurveJson => shippedJson<CurveJson>('gpt2', 'train_curve.json');

function setup(): { root: string; suiteDir: string } {
  const root = tempDir();
  return { root, suiteDir: copySuite(root, 'gpt2', ['config.json', 'manifest.json']) };
}

function historyLines(suiteDir: string): Array<Record<string, unknown>> {
  const file = join(suiteDir, 'history.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('baseline bless (real CLI)', () => {
  it('writes golden.<backend>.json holding exactly the run curve, and a history line', async () => {
    const { root, suiteDir } = setup();
    const curve = gpt2Curve();
    writeRun(join(root, 'reports/gpt2/run1'), { suite: 'gpt2', backend: 'wasm', pass: true, curve });
    const r = await cli(['bless', 'gpt2', '--from', 'reports/gpt2/run1', '--reason', 'first wasm golden'], root);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const file = join(suiteDir, 'golden.wasm.json');
    const g = readJson<Record<string, unknown> & { curve: CurveJson }>(file);
    expect(g).toMatchObject({ schema: 1, suite: 'gpt2', backend: 'wasm', fromRun: 'reports/gpt2/run1', reason: 'first wasm golden', steps: 1000 });
    expect(g.curve).toEqual(curve);
    const [h] = historyLines(suiteDir);
    expect(h).toMatchObject({ action: 'bless', backend: 'wasm', fromRun: 'reports/gpt2/run1', reason: 'first wasm golden', old: null });
    expect(h.new).toEqual({
      steps: 1000,
      finalLoss: curve.loss[999],
      sha256: createHash('sha256').update(readFileSync(file)).digest('hex'),
    });
    // Nothing but the golden and the history was added; no temp file left behind.
    expect(readdirSync(suiteDir).sort()).toEqual(['config.json', 'golden.wasm.json', 'history.jsonl', 'manifest.json']);
  });

  it('a GPU run is blessed under its device class, so another adapter never compares bit for bit against it', async () => {
    const { root, suiteDir } = setup();
    const key = 'webgpu-mesa-software-llvmpipe-llvm-15-0-6-256-bits';
    writeRun(join(root, 'run-gpu'), { suite: 'gpt2', backend: 'webgpu', goldenKey: key, pass: true, curve: gpt2Curve() });
    const r = await cli(['bless', 'gpt2', '--from', 'run-gpu', '--reason', 'first llvmpipe golden'], root);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readJson<Record<string, unknown>>(join(suiteDir, `golden.${key}.json`))).toMatchObject({ backend: key });
    expect(existsSync(join(suiteDir, 'golden.webgpu.json'))).toBe(false);
    expect(historyLines(suiteDir)[0]).toMatchObject({ backend: key });
  });

  it('a re-bless records the old golden and the largest loss change', async () => {
    const { root, suiteDir } = setup();
    const curve = gpt2Curve();
    writeRun(join(root, 'run1'), { suite: 'gpt2', backend: 'wasm', pass: true, curve });
    expect((await cli(['bless', 'gpt2', '--from', 'run1', '--reason', 'r1'], root)).exitCode).toBe(0);
    const oldBytes = readFileSync(join(suiteDir, 'golden.wasm.json'));

    const changed = structuredClone(curve);
    changed.loss[700] += 0.25;
    changed.loss[10] += 0.125;
    writeRun(join(root, 'run2'), { suite: 'gpt2', backend: 'wasm', pass: true, curve: changed });
    const r = await cli(['bless', 'gpt2', '--from', 'run2', '--reason', 'new attention kernel'], root);
    expect(r.exitCode).toBe(0);
    const h = historyLines(suiteDir);
    expect(h).toHaveLength(2);
    expect(h[1].old).toEqual({ steps: 1000, finalLoss: curve.loss[999], sha256: createHash('sha256').update(oldBytes).digest('hex') });
    const expectedMax = Math.abs(changed.loss[700] - curve.loss[700]);
    expect(h[1].summary).toContain(`max|Δloss| vs old golden ${expectedMax.toExponential(3)} at step 700`);
    expect(h[1].summary).toContain('2 of 1000 common steps differ');
    expect(readJson<{ curve: CurveJson }>(join(suiteDir, 'golden.wasm.json')).curve.loss).toEqual(changed.loss);
  });

  it('takes the suite as a path too, and keeps one golden per backend', async () => {
    const { root, suiteDir } = setup();
    writeRun(join(root, 'a'), { suite: 'gpt2', backend: 'wasm', pass: true, curve: gpt2Curve() });
    writeRun(join(root, 'b'), { suite: 'gpt2', backend: 'tensorflow-gpu', pass: true, curve: gpt2Curve() });
    expect((await cli(['bless', suiteDir, '--from', 'a', '--reason', 'x'], root)).exitCode).toBe(0);
    expect((await cli(['bless', './baselines/gpt2', '--from', 'b', '--reason', 'y'], root)).exitCode).toBe(0);
    expect(existsSync(join(suiteDir, 'golden.wasm.json'))).toBe(true);
    expect(existsSync(join(suiteDir, 'golden.tensorflow-gpu.json'))).toBe(true);
  });

  it.each([
    ['no --reason', [] as string[], /--reason is required/],
    ['an empty --reason', ['--reason', '  '], /--reason is required/],
    ['--reason without a value', ['--reason'], /--reason/],
  ])('refuses %s with exit 2 and writes nothing', async (_, reasonArgs, message) => {
    const { root, suiteDir } = setup();
    writeRun(join(root, 'run'), { suite: 'gpt2', backend: 'wasm', pass: true, curve: gpt2Curve() });
    const r = await cli(['bless', 'gpt2', '--from', 'run', ...reasonArgs], root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(suiteDir, 'golden.wasm.json'))).toBe(false);
    expect(existsSync(join(suiteDir, 'history.jsonl'))).toBe(false);
  });

  it('refuses a failed run unless --force, and records the force', async () => {
    const { root, suiteDir } = setup();
    writeRun(join(root, 'run'), { suite: 'gpt2', backend: 'wasm', pass: false, curve: gpt2Curve() });
    const refused = await cli(['bless', 'gpt2', '--from', 'run', '--reason', 'x'], root);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(join('run', 'verdict.json'));
    expect(refused.stderr).toMatch(/--force/);
    expect(existsSync(join(suiteDir, 'golden.wasm.json'))).toBe(false);

    const forced = await cli(['bless', 'gpt2', '--from', 'run', '--reason', 'accepting a known drift', '--force'], root);
    expect(forced.exitCode).toBe(0);
    expect(historyLines(suiteDir)[0]).toMatchObject({ forced: true, runPass: false });
  });

  it('refuses a run of another suite unless --force', async () => {
    const { root } = setup();
    writeRun(join(root, 'run'), { suite: 'bert', backend: 'wasm', pass: true, curve: gpt2Curve() });
    const r = await cli(['bless', 'gpt2', '--from', 'run', '--reason', 'x'], root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/suite "bert", not "gpt2"/);
  });

  it.each([
    ['NaN written as null', (c: CurveJson) => JSON.stringify(c).replace(/"loss":\[[^,]+/, '"loss":[null')],
    ['a Python NaN token', (c: CurveJson) => JSON.stringify(c).replace(/"loss":\[[^,]+/, '"loss":[NaN')],
    ['a literal that overflows to Infinity', (c: CurveJson) => JSON.stringify(c).replace(/"grad_norm":\[[^,]+/, '"grad_norm":[1e999')],
  ])('refuses a curve with %s (exit 2, golden untouched)', async (_, corrupt) => {
    const { root, suiteDir } = setup();
    const curve = gpt2Curve();
    const text = corrupt(curve);
    expect(text).not.toBe(JSON.stringify(curve));
    writeRun(join(root, 'run'), { suite: 'gpt2', backend: 'wasm', pass: true, curve }, text);
    const r = await cli(['bless', 'gpt2', '--from', 'run', '--reason', 'x'], root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(join('run', 'curve.json'));
    expect(existsSync(join(suiteDir, 'golden.wasm.json'))).toBe(false);
  });

  it.each([
    ['a missing --from', ['bless', 'gpt2', '--reason', 'x'], /--from is required/],
    ['a missing run folder', ['bless', 'gpt2', '--from', 'nope', '--reason', 'x'], /nope.verdict\.json: cannot read/],
    ['an unknown suite', ['bless', 'llama', '--from', 'run', '--reason', 'x'], /baselines.llama: no such suite folder/],
    ['a verdict without backend', ['bless', 'gpt2', '--from', 'bad', '--reason', 'x'], /verdict\.json: key backend/],
  ])('names the problem on %s (exit 2)', async (_, args, message) => {
    const { root } = setup();
    writeRun(join(root, 'run'), { suite: 'gpt2', backend: 'wasm', pass: true, curve: gpt2Curve() });
    writeRun(join(root, 'bad'), { suite: 'gpt2', backend: 'wasm', pass: true, curve: gpt2Curve() });
    writeFileSync(join(root, 'bad', 'verdict.json'), JSON.stringify({ suite: 'gpt2', pass: true }));
    const r = await cli(args, root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses to replace an unreadable golden unless --force', async () => {
    const { root, suiteDir } = setup();
    writeFileSync(join(suiteDir, 'golden.wasm.json'), '{"schema": 1, "curve": {"loss": [1,');
    writeRun(join(root, 'run'), { suite: 'gpt2', backend: 'wasm', pass: true, curve: gpt2Curve() });
    const r = await cli(['bless', 'gpt2', '--from', 'run', '--reason', 'x'], root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unreadable/);
    expect((await cli(['bless', 'gpt2', '--from', 'run', '--reason', 'repair', '--force'], root)).exitCode).toBe(0);
  });
});
