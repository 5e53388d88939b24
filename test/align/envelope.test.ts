/**
 * Tolerances that follow a measured precision: per-step curve envelopes (running maximum of the
 * noise, floor, k), their sources (a float64 replay of the reference, our calibration), and the
 * forward check's per-row widening from a float64 forward record. Expected values are worked by
 * hand from the definitions, not taken from the code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareMetric, noiseCurve, runningMax, type CurveTolerance } from '../../src/align/compare-curve.ts';
import { compareTensor, rowNoise } from '../../src/align/compare-tensor.ts';
import type { Curve } from '../../src/align/curve.ts';
import { noiseGrowthHint, suiteNoise } from '../../src/align/noise.ts';
import { loadSuite } from '../../src/align/suite.ts';
import { tempDir } from '../support/suite-copy.ts';

const work = tempDir('parity-envelope-');
afterAll(() => work.cleanup());

const curve = (values: number[], metric = 'loss'): Curve => ({ steps: values.map((_, i) => i), metrics: { [metric]: values } });
const ENVELOPED: CurveTolerance = { policy: 'approximate', atol: 1e-3, rtol: 0, allowedFailingSteps: 0, envelope: { k: 10, atol: 1e-5, rtol: 0 } };

describe('curve envelope', () => {
  it('the running maximum never narrows, and a NaN spread is infinitely wide from there on', () => {
    expect(runningMax([1, 3, 2, 5, 4])).toEqual([1, 3, 3, 5, 5]);
    expect(runningMax([1, Number.NaN, 0])).toEqual([1, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
  });

  it('tolerance(s) = max(floor, k · running max of the noise); the floor rules until the noise outgrows it', () => {
    const ref = curve([2, 2, 2, 2, 2]);
    const noise = noiseCurve('test', [0, 1, 2, 3, 4], [1e-7, 5e-6, 1e-7, 3e-6, 2e-5]);
    // k·runmax = 1e-6, 5e-5, 5e-5, 5e-5, 2e-4; floor 1e-5.
    const ours = curve([2 + 9e-6, 2 + 4e-5, 2 - 4.9e-5, 2, 2 + 1.9e-4]);
    const m = compareMetric('loss', ours, ref, ENVELOPED, noise);
    expect(m.envelope!.tolerance.map((t) => Number(t.toPrecision(6)))).toEqual([1e-5, 5e-5, 5e-5, 5e-5, 2e-4]);
    expect(m.envelope!.bounds).toEqual([{ fromStep: 0, by: 'floor' }, { fromStep: 1, by: 'noise' }]);
    expect(m.pass).toBe(true);
    expect(m.atol).toBe(1e-5); // the floor is what the atol column shows
    const late = compareMetric('loss', curve([2 + 1.1e-5, 2, 2, 2, 2]), ref, ENVELOPED, noise);
    expect(late.pass).toBe(false);
    expect(late.firstFailingStep).toBe(0); // 1.1e-5 > the floor at step 0, though step 4 allows 2e-4
  });

  it('without a noise curve the plain tolerance applies, and the envelope is not reported', () => {
    const m = compareMetric('loss', curve([2.0005]), curve([2]), ENVELOPED);
    expect(m.envelope).toBeUndefined();
    expect(m.atol).toBe(1e-3);
    expect(m.pass).toBe(true);
  });

  it('a relative floor grows with the reference value (grad norms)', () => {
    const tol: CurveTolerance = { ...ENVELOPED, envelope: { k: 10, atol: 1e-5, rtol: 1e-5 } };
    const m = compareMetric('grad_norm', curve([15.0001], 'grad_norm'), curve([15], 'grad_norm'), tol, noiseCurve('t', [0], [0]));
    expect(m.envelope!.tolerance[0]).toBeCloseTo(1e-5 + 15e-5, 12);
    expect(m.pass).toBe(true);
  });

  it('steps past the end of the noise keep its last value; missing and NaN steps never pass', () => {
    const noise = noiseCurve('short', [0], [1e-4]);
    const m = compareMetric('loss', curve([2, 2.0009, Number.NaN]), curve([2, 2, 2]), ENVELOPED, noise);
    expect(m.envelope!.tolerance.slice(0, 2)).toEqual([1e-3, 1e-3]);
    expect(m.failingSteps).toBe(1);
    expect(m.firstFailingStep).toBe(2);
    const missing = compareMetric('loss', curve([2]), curve([2, 2]), ENVELOPED, noise);
    expect(missing.firstFailingStep).toBe(1);
  });
});

describe('noise sources', () => {
  const REF = { steps: [0, 1, 2], loss: [3, 2.5, 2], mlm_loss: [2, 1.5, 1], grad_norm: [1, 2, 3], lr: [0, 1e-4, 2e-4] };
  const suiteWith = (name: string, files: Record<string, unknown>) => {
    const dir = join(work.dir, name);
    mkdirSync(dir, { recursive: true });
    for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), JSON.stringify(v));
    return loadSuite(dir);
  };
  const reference: Curve = { steps: REF.steps, metrics: { loss: REF.loss, mlm_loss: REF.mlm_loss, grad_norm: REF.grad_norm, lr: REF.lr } };
  const calibration = { schema: 1, suite: 's', backend: 'wasm', createdAt: 'x', method: 'm', steps: [0, 1, 2], spread: { loss: [1e-6, 0, 4e-6], grad_norm: [0, 0, 0] } };

  it('the float64 replay gives |ref32 − ref64| per step; loss parts take the total loss\'s; lr has none', () => {
    const suite = suiteWith('f64', { 'train_curve.float64.json': { steps: [0, 1, 2], loss: [3.000001, 2.5, 2.000003], grad_norm: [1, 2, 3.1], lr: REF.lr } });
    const n = suiteNoise(suite, reference, 'wasm').byMetric;
    expect([...n.get('loss')!.byStep.values()].map((v) => Number(v.toPrecision(3)))).toEqual([1e-6, 1e-6, 3e-6]);
    expect(n.get('mlm_loss')!.source).toBe('train_curve.float64.json (loss)');
    expect(n.get('grad_norm')!.byStep.get(2)).toBeCloseTo(0.1, 12);
    expect(n.get('lr')!.byStep.get(2)).toBe(0);
  });

  it('calibration noise serves where there is no float64 replay, this backend\'s file first, else wasm\'s', () => {
    const suite = suiteWith('cal', { 'noise.wasm.json': calibration, 'noise.webgpu-x.json': { ...calibration, backend: 'webgpu-x', spread: { loss: [9, 9, 9] } } });
    expect(suiteNoise(suite, reference, 'webgpu-x').byMetric.get('loss')!.source).toBe('noise.webgpu-x.json (loss)');
    const wasm = suiteNoise(suite, reference, 'cpu').byMetric;
    expect(wasm.get('loss')!.source).toBe('noise.wasm.json (loss)');
    expect([...wasm.get('loss')!.byStep.values()]).toEqual([1e-6, 1e-6, 4e-6]);
    expect(wasm.has('mlm_loss')).toBe(false);
  });

  it('the reference\'s own float64 precision wins over calibration', () => {
    const suite = suiteWith('both', { 'noise.wasm.json': calibration, 'train_curve.float64.json': { steps: [0, 1, 2], loss: REF.loss, grad_norm: REF.grad_norm, lr: REF.lr } });
    expect(suiteNoise(suite, reference, 'wasm').byMetric.get('loss')!.source).toBe('train_curve.float64.json (loss)');
  });

  it('a malformed noise file is unusable input naming it', () => {
    const suite = suiteWith('bad', { 'noise.wasm.json': { ...calibration, spread: { loss: [1, 2] } } });
    expect(() => suiteNoise(suite, reference, 'wasm')).toThrow(/noise\.wasm\.json.*spread\.loss.*differ in length/);
  });
});

describe('noise-growth hint (no envelope)', () => {
  const ref = curve(Array.from({ length: 200 }, () => 2));
  it('a gap that starts quiet and grows gets a hint naming calibrate and the float64 replay', () => {
    const ours = curve(Array.from({ length: 200 }, (_, i) => 2 + 1e-8 * Math.exp(i / 12)));
    const hint = noiseGrowthHint('loss', 'mine', ours, ref, 120, 1e-3);
    expect(hint).toMatch(/calibrate mine --write/);
    expect(hint).toMatch(/train_curve\.float64\.json/);
  });
  it('a gap that jumps early gets none', () => {
    const ours = curve(Array.from({ length: 200 }, (_, i) => 2 + (i > 3 ? 5e-4 : 0) + (i > 150 ? 1e-3 : 0)));
    expect(noiseGrowthHint('loss', 'mine', ours, ref, 151, 1e-3)).toBeUndefined();
    expect(noiseGrowthHint('loss', 'mine', ours, ref, 5, 1e-3)).toBeUndefined();
  });
});

describe('forward envelope', () => {
  // Two rows of three; the reference's own error is 1e-6 in row 0 and 1e-5 in row 1.
  const ref = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const ref64 = Float64Array.from([1 + 1e-6, 2, 3, 4, 5 - 1e-5, 6]);

  it('row noise is the largest |r32 − r64| of each last-axis row', () => {
    const n = rowNoise(ref, ref64, [2, 3]);
    expect(n[0]).toBeCloseTo(1e-6, 12);
    expect(n[1]).toBeCloseTo(1e-5, 12);
  });

  it('each element may be k × its row\'s noise away, never less than atol', () => {
    const noise = { source: 'f64', values64: ref64, k: 10 };
    // Row 1 allows 1e-4 everywhere in it, even where its own element is exact.
    const ours = Float32Array.from([1, 2, 3 + 9e-6, 4 + 9e-5, 5, 6]);
    const ok = compareTensor('t', ours, ref, [2, 3], 1e-5, 0, undefined, noise);
    expect(ok.pass).toBe(true);
    expect(ok.envelope).toMatchObject({ source: 'f64', k: 10, widenedElements: 3 });
    expect(ok.envelope!.maxTolerance).toBeCloseTo(1e-4, 10);
    // Row 0's noise (1e-6) widens nothing: atol 1e-5 still bounds it.
    const bad = compareTensor('t', Float32Array.from([1, 2 + 2e-5, 3, 4, 5, 6]), ref, [2, 3], 1e-5, 0, undefined, noise);
    expect(bad.pass).toBe(false);
  });

  it('a float64 record of another size is never silently ignored', () => {
    const r = compareTensor('t', ref, ref, [2, 3], 1e-5, 0, undefined, { source: 'f64', values64: new Float64Array(5), k: 10 });
    expect(r.pass).toBe(false);
  });
});
