/** LR schedules against the references' recorded LRs and against hand-worked values. */
import { describe, expect, it } from 'vitest';
import { readCurve } from '../../src/align/curve.ts';
import { lrAtSamples, lrAtStep, type LrSchedule } from '../../src/align/train/schedule.ts';
import { BASELINES } from '../support/backend.ts';

const base: LrSchedule = { maxLr: 1e-3, minLr: 1e-4, initLr: 0, warmupSamples: 100, decaySamples: 1000, style: 'cosine', samplesPerStep: 1 };

describe('against the reference runs', () => {
  it.each(['bert', 'gpt2', 't5', 't5v11'])('%s: HF warmup-cosine per step, within 1e-9 relative at all 1000 steps', (suite) => {
    const ref = readCurve(`${BASELINES}${suite}/train_curve.json`).metrics.lr;
    ref.forEach((lr, s) => expect(Math.abs(lrAtStep(base, s) - lr)).toBeLessThanOrEqual(1e-9 * lr));
  });

  it('megatron-bert: sample-based (8 per iteration), warmup 800, decay 8000 samples', () => {
    const ref = readCurve(`${BASELINES}megatron-bert/train_curve.json`).metrics;
    const s: LrSchedule = { ...base, warmupSamples: 800, decaySamples: 8000, samplesPerStep: 8 };
    ref.lr.forEach((lr, i) => expect(Math.abs(lrAtStep(s, i) - lr)).toBeLessThanOrEqual(1e-9 * lr));
    // Megatron prints the LR after the scheduler step: the next iteration's.
    ref.lr_after_step.forEach((lr, i) => expect(Math.abs(lrAtStep(s, i + 1) - lr)).toBeLessThanOrEqual(1e-9 * lr));
  });
});

describe('formulas (hand-worked values)', () => {
  const at = (over: Partial<LrSchedule>, n: number) => lrAtSamples({ ...base, ...over }, n);
  it('warmup is linear from initLr, reaching max at N = W', () => {
    expect(at({}, 0)).toBe(0);
    expect(at({}, 50)).toBeCloseTo(5e-4, 15);
    expect(at({}, 100)).toBeCloseTo(1e-3, 15);
    expect(at({ initLr: 1e-4 }, 50)).toBeCloseTo(1e-4 + 0.5 * 9e-4, 15);
  });
  it('linear decay: halfway is the midpoint; past D it is min', () => {
    expect(at({ style: 'linear' }, 550)).toBeCloseTo(5.5e-4, 15);
    expect(at({ style: 'linear' }, 1001)).toBe(1e-4);
  });
  it('cosine decay: halfway is the midpoint, a quarter is min + (max−min)(1+cos(π/4))/2', () => {
    expect(at({}, 550)).toBeCloseTo(5.5e-4, 15);
    expect(at({}, 325)).toBeCloseTo(1e-4 + 9e-4 * (1 + Math.SQRT1_2) / 2, 15);
  });
  it('constant stays at max after warmup', () => {
    expect(at({ style: 'constant' }, 5000)).toBe(1e-3);
  });
  it('inverse square root: max·√W/√N, floored at min', () => {
    expect(at({ style: 'inverse-square-root' }, 400)).toBeCloseTo(1e-3 * 10 / 20, 15);
    expect(at({ style: 'inverse-square-root', decaySamples: 1e9 }, 1e6)).toBe(1e-4);
  });
  it('WSD: flat until D − S, then the decay shape over S samples', () => {
    const wsd = { style: 'WSD' as const, wsdDecaySamples: 200 };
    expect(at(wsd, 800)).toBe(1e-3);
    expect(at({ ...wsd, wsdStyle: 'linear' }, 900)).toBeCloseTo(5.5e-4, 15);
    expect(at({ ...wsd, wsdStyle: 'exponential' }, 900)).toBeCloseTo(1e-4 + (2 * Math.SQRT1_2 - 1) * 9e-4, 15);
    expect(at({ ...wsd, wsdStyle: 'minus_sqrt' }, 900)).toBeCloseTo(1e-4 + (1 - Math.SQRT1_2) * 9e-4, 15);
    expect(at({ ...wsd, wsdStyle: 'cosine' }, 1000)).toBeCloseTo(1e-4, 15);
  });
});
