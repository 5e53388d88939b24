import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareMetric } from '../../../src/align/compare-curve.ts';
import type { Curve } from '../../../src/align/curve.ts';
import { compareWithReferences } from '../../../src/align/baseline/compare-references.ts';
import { importReference } from '../../../src/align/baseline/import/index.ts';
import { loadManifest } from '../../../src/align/baseline/manifest.ts';
import { readReference } from '../../../src/align/baseline/reference-file.ts';
import type { ImportFormat } from '../../../src/align/baseline/reference-format.ts';
import { windowStarts } from '../../../src/align/baseline/windows.ts';
import { InputError } from '../../../src/errors.ts';
import { copySuite, SHIPPED, shippedJson, tempDir } from './helpers.ts';

const MB = join(SHIPPED, 'megatron-bert');
const METRICS = ['lm_loss', 'binary_loss', 'grad_norm', 'lr', 'num_zeros'] as const;
const raw = shippedJson<Record<string, number[]>>('megatron-bert', 'train_curve.json');

/** The reference run itself, as our train loop would record it (steps 0..999). */
function referenceRun(): Curve {
  return { steps: [...raw.steps], metrics: Object.fromEntries(METRICS.map((m) => [m, [...raw[m]]])) };
}

function take(c: Curve, n: number): Curve {
  return { steps: c.steps.slice(0, n), metrics: Object.fromEntries(Object.entries(c.metrics).map(([k, v]) => [k, v.slice(0, n)])) };
}

const IMPORTS: Array<[name: string, file: string, format: ImportFormat, metric: string]> = [
  ['golden-dict', 'golden_values_current.json', 'megatron-golden', 'lm loss'],
  ['golden-list', 'golden_values_2023.json', 'megatron-golden', 'lm loss'],
  ['golden-zeros', 'golden_values_current.json', 'megatron-golden', 'num-zeros'],
  ['log-lm', 'megatron_train.log', 'megatron-log', 'lm loss'],
  ['log-sop', 'megatron_train.log', 'megatron-log', 'sop loss'],
  ['log-lr', 'megatron_train.log', 'megatron-log', 'learning rate'],
  ['log-gn', 'megatron_train.log', 'megatron-log', 'grad norm'],
];

let suiteDir: string;
beforeAll(() => {
  suiteDir = copySuite(tempDir(), 'megatron-bert', ['config.json', 'manifest.json']);
  for (const [name, file, format, metric] of IMPORTS) importReference({ file: join(MB, file), format, suiteDir, name, metric, force: false });
});

const byName = (results: ReturnType<typeof compareWithReferences>) => Object.fromEntries(results.map((r) => [r.metric.split(':')[0], r]));

describe('compareWithReferences', () => {
  it('the reference run itself passes every imported reference, over every point it covers', () => {
    const results = byName(compareWithReferences(suiteDir, loadManifest(suiteDir), referenceRun()));
    expect(Object.keys(results).sort()).toEqual(IMPORTS.map(([n]) => n).sort());
    for (const r of Object.values(results)) expect(r.pass, r.metric).toBe(true);
    expect(results['golden-dict'].steps).toBe(201);
    expect(results['golden-list'].steps).toBe(200);
    expect(results['log-lm'].steps).toBe(100);
    // The LR printed at iteration 1000 is the one iteration 1001 would use: no step of a 1000-step run.
    expect(results['log-lr'].steps).toBe(99);
    expect(results['golden-dict'].metric).toBe('golden-dict:lm_loss');
  });

  it('an off-by-one step mapping fails against the goldens and the log', () => {
    const ours = referenceRun();
    ours.metrics.lm_loss = [...raw.lm_loss.slice(1), raw.lm_loss[999]];
    const results = byName(compareWithReferences(suiteDir, loadManifest(suiteDir), ours));
    expect(results['golden-dict'].pass).toBe(false);
    expect(results['golden-list'].pass).toBe(false);
    expect(results['log-lm'].pass).toBe(false);
    expect(results['log-sop'].pass).toBe(true);
  });

  it('log references compare interval means: one step off by 0.02 fails the window that holds it', () => {
    const ours = referenceRun();
    ours.metrics.lm_loss[437] += 0.02; // iteration 438, window of iterations 431..440 → step 439
    const r = byName(compareWithReferences(suiteDir, loadManifest(suiteDir), ours))['log-lm'];
    expect(r.pass).toBe(false);
    expect(r.failingSteps).toBe(1);
    expect(r.firstFailingStep).toBe(439);
    expect(r.maxAbsDiff).toBeCloseTo(0.002, 6);
  });

  it('a short run compares the reference points its steps cover', () => {
    const results = byName(compareWithReferences(suiteDir, loadManifest(suiteDir), take(referenceRun(), 100)));
    for (const r of Object.values(results)) expect(r.pass, r.metric).toBe(true);
    expect(results['golden-dict'].steps).toBe(21); // iterations 1, 5, 10, …, 100
    expect(results['golden-list'].steps).toBe(20); // iterations 1, 6, …, 96
    expect(results['log-lm'].steps).toBe(10);
    expect(results['log-lr'].steps).toBe(9); // printed at 10..90 = our steps 10..90
  });

  it('a run with no steps fails every reference', () => {
    const results = compareWithReferences(suiteDir, loadManifest(suiteDir), { steps: [], metrics: {} });
    expect(results.every((r) => !r.pass && r.steps === 0)).toBe(true);
  });

  it('the source rounding is added to the tolerance: a zero curve atol still passes the 5-decimal goldens, and only because of it', () => {
    const strict = copySuite(tempDir(), 'megatron-bert', ['config.json']);
    writeFileSync(join(strict, 'manifest.json'), JSON.stringify({ schema: 1, tolerances: { curve: { lm_loss: { atol: 0 } } } }));
    importReference({ file: join(MB, 'golden_values_current.json'), format: 'megatron-golden', suiteDir: strict, name: 'g', force: false });
    importReference({ file: join(MB, 'megatron_train.log'), format: 'megatron-log', suiteDir: strict, name: 'l', force: false });
    const results = byName(compareWithReferences(strict, loadManifest(strict), referenceRun()));
    expect(results.g).toMatchObject({ pass: true, atol: 5e-6, rtol: 0 });
    expect(results.l).toMatchObject({ pass: true, atol: 0, rtol: 5e-7 });
    // Without the rounding allowance the same comparison fails.
    const ref = readReference(join(strict, 'references/g.json'));
    const bare = compareMetric('lm_loss', referenceRun(), ref.curve, { policy: 'approximate', atol: 0, rtol: 0, allowedFailingSteps: 0 });
    expect(bare.pass).toBe(false);
  });

  it('a reference metric without a tolerance is an input error naming the manifest', () => {
    const dir = copySuite(tempDir(), 'megatron-bert', ['config.json']);
    writeFileSync(join(dir, 'w.csv'), 'step,tokens_per_second\n0,100\n');
    importReference({ file: join(dir, 'w.csv'), format: 'csv', suiteDir: dir, name: 'w', force: false });
    expect(() => compareWithReferences(dir, loadManifest(dir), referenceRun())).toThrow(InputError);
    expect(() => compareWithReferences(dir, loadManifest(dir), referenceRun())).toThrow(/tolerances\.curve\.tokens_per_second/);
  });
});

describe('windowStarts', () => {
  it.each([
    ['Megatron, log interval 10', [9, 19, 29], 10, [0, 10, 20]],
    ['HF with logging_first_step', [0, 9, 19], 10, [0, 1, 10]],
    ['per-step values', [4, 9], 1, [4, 9]],
    ['a resumed run', [509, 519], 10, [500, 510]],
    ['a first window that would reach below step 0', [4], 10, [0]],
  ])('%s', (_, steps, interval, starts) => {
    expect(windowStarts(steps, interval)).toEqual(starts);
  });
});
