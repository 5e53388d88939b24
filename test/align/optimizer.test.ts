/**
 * AdamW update rules and clipping, worked by hand in float64 with explicit float32 rounding at
 * the points each reference rounds (torch: python scalars meet float32 tensors; apex: everything
 * float32), and checked for the properties that distinguish them.
 */
import { describe, expect, it } from 'vitest';
import { AdamW, clipGradients, type ParamState } from '../../src/align/train/optimizer.ts';

const f = Math.fround;
const state = (value: number[], decay = true): ParamState => ({ name: 'p', value: Float32Array.from(value), m: new Float32Array(value.length), v: new Float32Array(value.length), decay });

describe('torch-adamw', () => {
  it('first step: p·(1−lr·wd) − lr·ĝ/(|ĝ|+eps·…) moves every weight by about lr against the gradient', () => {
    const p = state([1, -2, 0.5]);
    const g = Float32Array.from([0.3, -0.1, 0]);
    new AdamW({ rule: 'torch-adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }).step([p], [g], 1e-3);
    // After one step m = 0.1g, v = 0.001g², bias-corrected m/√v = sign(g) (exactly, up to eps).
    const expected = [1, -2, 0.5].map((w, i) => {
      const decayed = w * (1 - 1e-3 * 0.01);
      const gi = g[i];
      const m = 0.1 * gi, v = 0.001 * gi * gi;
      const denom = Math.sqrt(v) / Math.sqrt(0.001) + 1e-8;
      return decayed - (1e-3 / 0.1) * m / denom;
    });
    p.value.forEach((w, i) => expect(Math.abs(w - expected[i])).toBeLessThan(2e-7));
    expect(p.value[2]).toBe(f(0.5 * f(1 - 1e-5))); // zero gradient: only the decay
  });

  it('no decay group: a zero gradient leaves the weight exactly unchanged', () => {
    const p = state([0.25], false);
    new AdamW({ rule: 'torch-adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }).step([p], [Float32Array.from([0])], 1e-3);
    expect(p.value[0]).toBe(0.25);
  });

  it('lr 0 changes no weight but advances the moments and the step count (lr(0) = 0 in the fixtures)', () => {
    const p = state([0.25]);
    const opt = new AdamW({ rule: 'torch-adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    opt.step([p], [Float32Array.from([2])], 0);
    expect(p.value[0]).toBe(0.25);
    expect(p.m[0]).toBe(f(f(0.1) * 2));
    expect(opt.stepCount).toBe(1);
  });
});

describe('apex-adamw', () => {
  it('weight decay enters the update (scaled by lr), not a separate multiply', () => {
    const p = state([2]);
    new AdamW({ rule: 'apex-adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }).step([p], [Float32Array.from([0])], 0.1);
    // m = v = 0: update = 0/(0+eps) + wd·p = 0.02; p = 2 − 0.1·0.02
    expect(p.value[0]).toBe(f(2 - f(f(0.1) * f(f(0.01) * 2))));
  });

  it('uses (1 − β) computed in float32 from float32 β: 0.100000024 and 0.0009999871', () => {
    const p = state([0]);
    new AdamW({ rule: 'apex-adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }).step([p], [Float32Array.from([1])], 0);
    expect(p.m[0]).toBeCloseTo(0.100000024, 9);
    // float32(0.999) = 0.99900001287…, so 1 − β2 is 0.00099998713 (not the decimal 0.001).
    expect(p.v[0]).toBeCloseTo(0.00099998713, 11);
  });
});

describe('clipping', () => {
  it('torch: norm of per-parameter norms, coefficient max/(norm+1e-6) always applied when < 1', () => {
    const g = [Float32Array.from([3, 0]), Float32Array.from([0, 4])];
    const norm = clipGradients(g, 1, 'torch');
    expect(norm).toBeCloseTo(5, 6);
    // torch: clip_coef = max_norm / (total_norm + 1e-6), in float32.
    const coef = f(f(1) / f(f(5) + f(1e-6)));
    expect(g[0][0]).toBe(f(3 * coef));
    expect(g[1][1]).toBe(f(4 * coef));
  });

  it('torch: the +1e-6 in the coefficient is there (a norm of 5e-6 clipped to 1e-6 scales by 1/6, not 1/5)', () => {
    // At norms near 1e-6 the guard term dominates, so leaving it out changes the result by 20 %.
    const g = [Float32Array.from([3e-6, 0]), Float32Array.from([0, 4e-6])];
    clipGradients(g, 1e-6, 'torch');
    expect(g[0][0] / f(3e-6)).toBeCloseTo(1 / 6, 6);
    expect(g[1][1] / f(4e-6)).toBeCloseTo(1 / 6, 6);
  });

  it('a norm under the maximum leaves gradients untouched (both rules)', () => {
    for (const rule of ['torch', 'megatron'] as const) {
      const g = [Float32Array.from([0.3, 0.4])];
      expect(clipGradients(g, 1, rule)).toBeCloseTo(0.5, 6);
      expect(Array.from(g[0])).toEqual([f(0.3), f(0.4)]);
    }
  });

  it('megatron: the norm is accumulated in float64 (a float32 sum of 1e6 terms would be off by ~1e-4)', () => {
    const big = new Float32Array(1_000_000).fill(1e-3);
    const exact = 1000 * f(1e-3);
    expect(Math.abs(clipGradients([big], 1e9, 'megatron') - exact) / exact).toBeLessThan(1e-9);
  });
});
