/**
 * Export to Megatron golden values, checked against the shipped Megatron files themselves:
 * import → export must give back their values and steps exactly, and exporting the reference
 * train_curve.json must reproduce them (they were made from it by round(float32, 5)).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serializeGolden } from '../../../src/align/baseline/golden.ts';
import { importReference } from '../../../src/align/baseline/import/index.ts';
import { cli, copySuite, readJson, SHIPPED, shippedJson, tempDir } from './helpers.ts';

type GoldenFile = Record<string, { start_step: number; end_step: number; step_interval: number; values: number[] | Record<string, number> }>;
const MB = join(SHIPPED, 'megatron-bert');

function suite(): { root: string; suiteDir: string } {
  const root = tempDir();
  return { root, suiteDir: copySuite(root, 'megatron-bert', ['config.json', 'manifest.json', 'train_curve.json']) };
}

async function ok(args: string[], cwd: string): Promise<void> {
  const r = await cli(args, cwd);
  expect(r.exitCode, r.stderr).toBe(0);
}

describe('import → export round trip (real CLI)', () => {
  it.each([
    ['golden_values_current.json', 'dict'],
    ['golden_values_2023.json', 'list'],
  ] as const)('%s gives back the same values and steps, metric by metric (%s form)', async (file, form) => {
    const { root } = suite();
    const original = shippedJson<GoldenFile>('megatron-bert', file);
    const metrics = Object.keys(original).filter((k) => typeof original[k] === 'object');
    expect(metrics).toEqual(['lm loss', 'num-zeros']);
    for (const metric of metrics) {
      const name = metric.replace(/\W+/g, '-');
      await ok(['import', join(MB, file), '--format', 'megatron-golden', '--metric', metric, '--name', name, '--into', 'megatron-bert'], root);
      await ok(['export', 'megatron-bert', '--format', 'megatron-golden', '--form', form, '--source', name, '--out', `${name}.json`], root);
      const back = readJson<GoldenFile>(join(root, `${name}.json`));
      expect(Object.keys(back)).toEqual([metric]);
      expect(back[metric]).toEqual(original[metric]);
      // Same iteration keys in the same order, not merely an equal set.
      if (form === 'dict') expect(Object.keys(back[metric].values)).toEqual(Object.keys(original[metric].values));
    }
  });
});

describe('export from a curve', () => {
  it('the reference curve every 5 iterations reproduces golden_values_current.json (dict) and golden_values_2023.json (list)', async () => {
    const { root } = suite();
    await ok(['export', 'megatron-bert', '--format', 'megatron-golden', '--interval', '5', '--out', 'dict.json'], root);
    expect(readJson(join(root, 'dict.json'))).toEqual(shippedJson('megatron-bert', 'golden_values_current.json'));
    await ok(['export', 'megatron-bert', '--format', 'megatron-golden', '--form', 'list', '--interval', '5', '--metric', 'lm loss', '--metric', 'num-zeros', '--out', 'list.json'], root);
    const { iteration_timing_avg: _, ...expected } = shippedJson<Record<string, unknown>>('megatron-bert', 'golden_values_2023.json');
    expect(readJson(join(root, 'list.json'))).toEqual(expected);
  });

  it('from golden:<backend>, our own golden file', async () => {
    const { root, suiteDir } = suite();
    const raw = shippedJson<Record<string, number[]>>('megatron-bert', 'train_curve.json');
    const curve = { steps: raw.steps, metrics: { loss: raw.loss, lm_loss: raw.lm_loss, num_zeros: raw.num_zeros } };
    writeFileSync(join(suiteDir, 'golden.wasm.json'), serializeGolden({ schema: 1, suite: 'megatron-bert', backend: 'wasm', createdAt: 'x', fromRun: 'x', reason: 'x', steps: 1000, curve }));
    await ok(['export', 'megatron-bert', '--format', 'megatron-golden', '--source', 'golden:wasm', '--interval', '5', '--out', 'g.json'], root);
    expect(readJson(join(root, 'g.json'))).toEqual(shippedJson('megatron-bert', 'golden_values_current.json'));
  });

  it('the learning rate goes out as Megatron prints it: iteration I holds the LR of our step I', async () => {
    const { root } = suite();
    await ok(['export', 'megatron-bert', '--format', 'megatron-golden', '--metric', 'learning rate', '--decimals', 'full', '--out', 'lr.json'], root);
    const lr = readJson<GoldenFile>(join(root, 'lr.json'))['learning-rate'].values as Record<string, number>;
    const raw = shippedJson<{ lr: number[] }>('megatron-bert', 'train_curve.json');
    // Cross-check against the LR the log prints (%.3E) at iterations 10, 20, … 990.
    const log = readFileSync(join(MB, 'megatron_train.log'), 'utf8');
    let checked = 0;
    for (const m of log.matchAll(/iteration\s+(\d+)\/.*?learning rate: (\S+) \|/g)) {
      const it = Number(m[1]);
      if (it >= 1000) continue;
      expect(lr[String(it)]).toBe(raw.lr[it]);
      expect(Math.abs(lr[String(it)] - Number(m[2]))).toBeLessThanOrEqual(5e-4 * Number(m[2]));
      checked++;
    }
    expect(checked).toBe(99);
  });
});

describe('export refusals (exit 2)', () => {
  it.each([
    ['a dict golden as a list (uneven iterations 1, 5, 10)', ['--source', 'g', '--form', 'list'], /not evenly spaced.*--form dict/],
    ['log interval means as golden values', ['--source', 'l'], /means over 10 steps/],
    ['an unknown source', ['--source', 'nope'], /neither "reference", "golden:<backend>" nor an imported reference/],
    ['a missing golden', ['--source', 'golden:webgl'], /golden\.webgl\.json: no golden/],
    ['a missing --out', [], /--out is required/],
    ['a metric the curve lacks', ['--metric', 'params norm'], /no series "params_norm"/],
    ['--interval with an imported source', ['--source', 'g', '--interval', '5'], /--interval applies to --source reference/],
  ])('%s', async (_, flags, message) => {
    const { root, suiteDir } = suite();
    // Imports through the function (the CLI import is tested in import.test.ts); the export runs through the CLI.
    importReference({ file: join(MB, 'golden_values_current.json'), format: 'megatron-golden', suiteDir, name: 'g', force: false });
    importReference({ file: join(MB, 'megatron_train.log'), format: 'megatron-log', suiteDir, name: 'l', force: false });
    const out = flags.length === 0 || message.source.includes('--out') ? [] : ['--out', 'x.json'];
    const r = await cli(['export', 'megatron-bert', '--format', 'megatron-golden', ...flags, ...out], root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
