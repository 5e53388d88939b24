/**
 * `npm run align` as a user runs it: exit codes 0 / 1 / 2, the verdict JSON contract, the run
 * folder, and clear errors for unusable input.
 */
import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync, writeFileSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/weightmap/readers/safetensors.ts';
import { writeSafetensors } from '../../src/weightmap/readers/safetensors-writer.ts';
import { copySuite, REPO, tempDir, TSX } from '../support/suite-copy.ts';

const BERT_FILES = ['config.json', 'model.safetensors', 'final_weights.safetensors', 'eval_inputs.safetensors', 'forward_initial.safetensors', 'forward_final.safetensors', 'batches.safetensors', 'hyperparams.json', 'train_curve.json'];
const work = tempDir('parity-cli-');
afterAll(() => work.cleanup());

// GITHUB_STEP_SUMMARY cleared: these runs are tests, not the CI job's own align.
const align = (args: string[]) => execa(TSX, ['src/cli/align.ts', ...args, '--reports', join(work.dir, 'reports')], { cwd: REPO, reject: false, env: { GITHUB_STEP_SUMMARY: '' } });

describe('align CLI', () => {
  it('aligns a short run of the shipped BERT suite: exit 0, the verdict contract, a run folder', async () => {
    const json = join(work.dir, 'bert.json');
    const r = await align(['bert', '--steps', '20', '--json', json]);
    expect(r.exitCode, r.stderr).toBe(0);
    const v = JSON.parse(readFileSync(json, 'utf8'));
    expect(v).toMatchObject({
      suite: 'bert', model: 'bert', backend: expect.any(String), pass: true,
      forward: { pass: true, maxAbsDiff: expect.any(Number), firstDivergence: null, tensors: expect.arrayContaining([expect.objectContaining({ name: 'initial/prediction_logits', maxAbsDiff: expect.any(Number), pass: true })]) },
      train: { pass: true, steps: 20, maxAbsDiff: expect.any(Number), maxRelDiff: expect.any(Number), failingSteps: 0, firstFailingStep: null, msPerStep: expect.any(Number) },
    });
    expect(r.stdout).toMatch(/backend/);
    const runs = readdirSync(join(work.dir, 'reports', 'bert'));
    const runDir = join(work.dir, 'reports', 'bert', runs[runs.length - 1]);
    for (const f of ['verdict.json', 'curve.json', 'reference-curve.json', 'report.html', 'junit.xml', 'summary.md']) expect(existsSync(join(runDir, f)), f).toBe(true);
  });

  it('a wrong LayerNorm eps (1e-5 instead of 1e-12) exits 1 and names the embeddings', async () => {
    const s = copySuite('bert', BERT_FILES);
    try {
      const config = JSON.parse(readFileSync(join(s.dir, 'config.json'), 'utf8'));
      writeFileSync(join(s.dir, 'config.json'), JSON.stringify({ ...config, layer_norm_eps: 1e-5 }));
      const json = join(s.dir, 'v.json');
      const r = await align([s.dir, '--steps', '10', '--json', json, '--no-report']);
      expect(r.exitCode).toBe(1);
      const v = JSON.parse(readFileSync(json, 'utf8'));
      // The embedding norm's output is hidden_states.0: the finest the stored tensors can name.
      expect(v.forward.firstDivergence).toBe('initial/embeddings.norm');
      expect(v.forward.divergence).toMatchObject({ reference: 'hidden_states.0', subBlock: 'embeddings.norm', lastPassing: null });
      expect(r.stdout).toContain('MISALIGNED');
    } finally {
      s.cleanup();
    }
  });

  it('--no-report writes no run folder; --json still saves the verdict', async () => {
    const reports = join(work.dir, 'no-report');
    const json = join(work.dir, 'no-report.json');
    const r = await execa(TSX, ['src/cli/align.ts', 'bert', '--only', 'forward', '--no-report', '--json', json, '--reports', reports], { cwd: REPO, reject: false, env: { GITHUB_STEP_SUMMARY: '' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(reports)).toBe(false);
    expect(r.stdout).not.toMatch(/^report: /m);
    expect(JSON.parse(readFileSync(json, 'utf8')).forward.pass).toBe(true);
  });

  it('the step count defaults to the reference curve length of any fixture-shaped folder', async () => {
    const s = copySuite('bert', BERT_FILES.filter((f) => f !== 'batches.safetensors' && f !== 'train_curve.json'));
    try {
      const STEPS = 12;
      const curve = JSON.parse(readFileSync(join(REPO, 'baselines/bert/train_curve.json'), 'utf8'));
      writeFileSync(join(s.dir, 'train_curve.json'), JSON.stringify(Object.fromEntries(Object.entries(curve).map(([k, v]) => [k, (v as number[]).slice(0, STEPS)]))));
      const batches = readSafetensors(join(REPO, 'baselines/bert/batches.safetensors'));
      writeSafetensors(join(s.dir, 'batches.safetensors'), [...batches.tensors.values()].map((t) => {
        const per = t.shape.slice(1).reduce((a, d) => a * d, 1);
        return { name: t.name, dtype: 'I32' as const, shape: [STEPS, ...t.shape.slice(1)], data: t.toInt32().slice(0, STEPS * per) };
      }));
      const json = join(s.dir, 'v.json');
      const r = await align([s.dir, '--only', 'train', '--json', json, '--no-report']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse(readFileSync(json, 'utf8')).train.steps).toBe(STEPS);
      const tooMany = await align([s.dir, '--only', 'train', '--steps', String(STEPS + 1), '--no-report']);
      expect(tooMany.exitCode).toBe(2);
      expect(tooMany.stderr).toMatch(/train_curve\.json.*more steps/);
    } finally {
      s.cleanup();
    }
  });

  it.each([
    ['an unknown suite', ['no-such-suite'], /no such suite folder/],
    ['an unknown backend', ['bert', '--backend', 'metal'], /unknown backend "metal"/],
    ['a bad --only', ['bert', '--only', 'everything'], /unknown --only/],
    ['a bad --steps', ['bert', '--steps', '0'], /--steps must be a positive integer/],
    ['an unknown flag', ['bert', '--fast'], /Unknown option '--fast'/],
  ])('%s exits 2 with a clear message', async (_what, args, message) => {
    const r = await align(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it.each([
    ['missing batches', (dir: string) => truncateSync(join(dir, 'batches.safetensors'), 0), ['--only', 'train'], /batches\.safetensors/],
    ['truncated weights', (dir: string) => truncateSync(join(dir, 'model.safetensors'), statSync(join(dir, 'model.safetensors')).size - 100), ['--only', 'forward'], /model\.safetensors/],
    ['a config that does not fit the weights', (dir: string) => {
      const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...c, intermediate_size: 128 }));
    }, ['--only', 'forward'], /model\.safetensors: tensor "bert\.encoder\.layer\.0\.intermediate\.dense\.bias".*shape mismatch.*expected \[128\], got \[256\]/],
    ['BERT batches without next_sentence_label', (dir: string) => {
      const file = join(dir, 'batches.safetensors');
      const kept = [...readSafetensors(file).tensors.values()].filter((t) => t.name !== 'next_sentence_label');
      writeSafetensors(file, kept.map((t) => ({ name: t.name, dtype: 'I32' as const, shape: [...t.shape], data: t.toInt32() })));
    }, ['--only', 'train', '--steps', '2'], /batches\.safetensors: tensor "next_sentence_label": no gradient reaches parameter .*missing next_sentence_label/],
  ])('%s exits 2 naming the file', async (_what, breakIt, args, message) => {
    const s = copySuite('bert', BERT_FILES);
    try {
      breakIt(s.dir);
      const r = await align([s.dir, ...args, '--no-report']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(message);
    } finally {
      s.cleanup();
    }
  });
});
