/**
 * Attention, linear and MLP against float64 loops written from the definitions; the key/value
 * cache against the uncached computation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { crossAttention, projectKeyValue, selfAttention, type AttentionParams } from '../../src/layers/attention.ts';
import { linear } from '../../src/layers/linear.ts';
import { causalMaskBias, FLOAT32_MIN, paddingMaskBias } from '../../src/layers/masks.ts';
import { mlp } from '../../src/layers/mlp.ts';
import { useBackend } from '../support/backend.ts';
import { dot, geluTanh, matmul, maxAbsDiff, numericGrad, rand, softmaxRow } from '../support/ref64.ts';

beforeAll(useBackend);

const B = 2, T = 5, H = 8, NH = 2, HD = H / NH;
const x = rand(B * T * H, 11);
const W = { q: rand(H * H, 12, 0.5), k: rand(H * H, 13, 0.5), v: rand(H * H, 14, 0.5), o: rand(H * H, 15, 0.5) };
const Bias = { q: rand(H, 16, 0.1), k: rand(H, 17, 0.1), v: rand(H, 18, 0.1), o: rand(H, 19, 0.1) };
const mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]; // row 1 has two padded positions

function params(): AttentionParams {
  const p = (n: 'q' | 'k' | 'v' | 'o') => ({ weight: tf.tensor2d(W[n], [H, H]), bias: tf.tensor1d(Bias[n]) });
  return { q: p('q'), k: p('k'), v: p('v'), o: p('o') };
}

/** Float64 multi-head attention with an additive mask (padding and/or causal). */
function attention64(xs: number[], opts: { scale: boolean; padding: boolean; causal: boolean }): { out: number[]; probs: number[] } {
  const proj = (n: 'q' | 'k' | 'v' | 'o', input: number[], rowsN: number) => matmul(input, W[n], rowsN, H, H).map((v, i) => v + Bias[n][i % H]);
  const q = proj('q', xs, B * T), k = proj('k', xs, B * T), v = proj('v', xs, B * T);
  const context = new Array(B * T * H).fill(0);
  const probs: number[] = [];
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let i = 0; i < T; i++) {
    const scores: number[] = [];
    for (let j = 0; j < T; j++) {
      let s = 0;
      for (let d = 0; d < HD; d++) s += q[(b * T + i) * H + h * HD + d] * k[(b * T + j) * H + h * HD + d];
      if (opts.scale) s /= Math.sqrt(HD);
      if (opts.padding && mask[b * T + j] === 0) s += FLOAT32_MIN;
      if (opts.causal && j > i) s += FLOAT32_MIN;
      scores.push(s);
    }
    const p = softmaxRow(scores);
    probs.push(...p);
    for (let d = 0; d < HD; d++) context[(b * T + i) * H + h * HD + d] = p.reduce((acc, pj, j) => acc + pj * v[(b * T + j) * H + h * HD + d], 0);
  }
  return { out: proj('o', context, B * T), probs };
}

describe('selfAttention', () => {
  it.each([
    { scale: true, padding: true, causal: false },
    { scale: false, padding: true, causal: false },
    { scale: true, padding: true, causal: true },
    { scale: true, padding: false, causal: false },
  ])('forward matches float64 (%o)', (opts) => {
    const [out, probs] = tf.tidy(() => {
      const biases: tf.Tensor[] = [];
      if (opts.padding) biases.push(paddingMaskBias(tf.tensor2d(mask, [B, T], 'int32'), FLOAT32_MIN));
      if (opts.causal) biases.push(causalMaskBias(T, T, FLOAT32_MIN));
      const bias = biases.length === 0 ? undefined : biases.reduce((a, c) => tf.add(a, c));
      const r = selfAttention(tf.tensor3d(x, [B, T, H]), params(), { heads: NH, scaleScores: opts.scale, bias });
      return [r.out.dataSync(), r.probs.dataSync()];
    });
    const ref = attention64(x, opts);
    expect(maxAbsDiff(probs, ref.probs)).toBeLessThan(1e-6);
    expect(maxAbsDiff(out, ref.out)).toBeLessThan(2e-6);
  });

  it('scaling by 1/sqrt(head dim) changes the output (a dropped scale is visible)', () => {
    const a = attention64(x, { scale: true, padding: true, causal: false }).out;
    const b = attention64(x, { scale: false, padding: true, causal: false }).out;
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3);
  });

  it('gradient w.r.t. the input matches central differences', () => {
    const proj = rand(B * T * H, 20);
    const opts = { scale: true, padding: true, causal: true };
    const g = tf.tidy(() => {
      const bias = tf.add(paddingMaskBias(tf.tensor2d(mask, [B, T], 'int32'), FLOAT32_MIN), causalMaskBias(T, T, FLOAT32_MIN));
      return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(selfAttention(t, params(), { heads: NH, scaleScores: true, bias }).out, tf.tensor3d(proj, [B, T, H]))))(tf.tensor3d(x, [B, T, H])).dataSync();
    });
    const numeric = numericGrad((xs) => dot(attention64(xs, opts).out, proj), x);
    expect(maxAbsDiff(g, numeric)).toBeLessThan(2e-4);
  });

  it('with a key/value cache, each step feeds one query and the key length grows by one; outputs equal the uncached causal pass', () => {
    const full = tf.tidy(() => selfAttention(tf.tensor3d(x, [B, T, H]), params(), { heads: NH, scaleScores: true, bias: causalMaskBias(T, T, FLOAT32_MIN) }).out.dataSync());
    const stepwise: number[] = [];
    const keyLengths: number[] = [];
    const queryLengths: number[] = [];
    let past: { k: tf.Tensor; v: tf.Tensor } | undefined;
    for (let t = 0; t < T; t++) {
      const xt = tf.tensor3d(x, [B, T, H]).slice([0, t, 0], [B, 1, H]);
      const r = selfAttention(xt, params(), { heads: NH, scaleScores: true, bias: causalMaskBias(1, t + 1, FLOAT32_MIN, t) }, past);
      queryLengths.push(r.probs.shape[2] as number);
      keyLengths.push(r.kv.k.shape[2] as number);
      past = r.kv;
      const o = r.out.dataSync();
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) stepwise[(b * T + t) * H + h] = o[b * H + h];
    }
    expect(queryLengths).toEqual([1, 1, 1, 1, 1]);
    expect(keyLengths).toEqual([1, 2, 3, 4, 5]);
    expect(maxAbsDiff(stepwise, full)).toBeLessThan(1e-6);
  });
});

describe('crossAttention', () => {
  it('precomputed memory gives the same result as projecting the encoder output each time', () => {
    const enc = rand(B * 3 * H, 30);
    const [a, b] = tf.tidy(() => {
      const e = tf.tensor3d(enc, [B, 3, H]);
      const q = tf.tensor3d(x, [B, T, H]);
      const direct = crossAttention(q, e, params(), { heads: NH, scaleScores: false }).out.dataSync();
      const memory = projectKeyValue(e, params(), NH);
      return [direct, crossAttention(q, null, params(), { heads: NH, scaleScores: false }, memory).out.dataSync()];
    });
    expect(maxAbsDiff(a, b)).toBe(0);
  });
});

describe('linear and mlp', () => {
  it('linear: y = xW + b with W stored [in, out]; gradients match the closed form', () => {
    const w = rand(H * 3, 40), bias = rand(3, 41);
    const upstream = rand(B * T * 3, 42);
    const [y, gx, gw, gb] = tf.tidy(() => {
      const f = (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear(a, { weight: ww, bias: bb }), tf.tensor3d(upstream, [B, T, 3])));
      const out = linear(tf.tensor3d(x, [B, T, H]), { weight: tf.tensor2d(w, [H, 3]), bias: tf.tensor1d(bias) }).dataSync();
      const g = tf.grads(f)([tf.tensor3d(x, [B, T, H]), tf.tensor2d(w, [H, 3]), tf.tensor1d(bias)]).map((t) => t.dataSync());
      return [out, ...g];
    });
    expect(maxAbsDiff(y, matmul(x, w, B * T, H, 3).map((v, i) => v + bias[i % 3]))).toBeLessThan(1e-6);
    // dX = dY·Wᵀ, dW = Xᵀ·dY, db = Σ dY
    const wT: number[] = [];
    for (let o = 0; o < 3; o++) for (let i = 0; i < H; i++) wT.push(w[i * 3 + o]);
    expect(maxAbsDiff(gx, matmul(upstream, wT, B * T, 3, H))).toBeLessThan(1e-6);
    const xT: number[] = [];
    for (let i = 0; i < H; i++) for (let r = 0; r < B * T; r++) xT.push(x[r * H + i]);
    expect(maxAbsDiff(gw, matmul(xT, upstream, H, B * T, 3))).toBeLessThan(1e-5);
    expect(maxAbsDiff(gb, [0, 1, 2].map((o) => upstream.filter((_, i) => i % 3 === o).reduce((a, v) => a + v, 0)))).toBeLessThan(1e-5);
  });

  it.each([false, true])('mlp (gated %s) matches float64', (gated) => {
    const F = 6;
    const wi = rand(H * F, 50, 0.5), wg = rand(H * F, 51, 0.5), wo = rand(F * H, 52, 0.5);
    const ours = tf.tidy(() =>
      mlp(tf.tensor3d(x, [B, T, H]), {
        fcIn: { weight: tf.tensor2d(wi, [H, F]) },
        fcOut: { weight: tf.tensor2d(wo, [F, H]) },
        ...(gated ? { fcGate: { weight: tf.tensor2d(wg, [H, F]) } } : {}),
      }, 'gelu_new').dataSync(),
    );
    const up = matmul(x, wi, B * T, H, F);
    const hidden = gated ? matmul(x, wg, B * T, H, F).map((g, i) => geluTanh(g) * up[i]) : up.map(geluTanh);
    expect(maxAbsDiff(ours, matmul(hidden, wo, B * T, F, H))).toBeLessThan(2e-6);
  });
});
