/**
 * Attention (multi-head, grouped-query, rotary), linear and MLP (plain, gated, SwiGLU) against
 * float64 loops written from the definitions; the key/value cache against the uncached computation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { crossAttention, projectKeyValue, selfAttention, type AttentionParams } from '../../src/layers/attention.ts';
import { linear } from '../../src/layers/linear.ts';
import { causalMaskBias, FLOAT32_MIN, paddingMaskBias } from '../../src/layers/masks.ts';
import { mlp } from '../../src/layers/mlp.ts';
import { rotaryAngles, rotaryTables } from '../../src/layers/rotary.ts';
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

describe('grouped-query attention with rotary positions (LLaMA)', () => {
  const G = { H: 16, NH: 4, NKV: 2, HD: 4, T: 6 };
  const KV = G.NKV * G.HD;
  const xg = rand(B * G.T * G.H, 70);
  const Wg = { q: rand(G.H * G.H, 71, 0.5), k: rand(G.H * KV, 72, 0.5), v: rand(G.H * KV, 73, 0.5), o: rand(G.H * G.H, 74, 0.5) };
  const maskG = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]; // row 1 right-padded
  const tables = rotaryTables(G.HD, 10000, 32);

  function gqaParams(): AttentionParams {
    return {
      q: { weight: tf.tensor2d(Wg.q, [G.H, G.H]) },
      k: { weight: tf.tensor2d(Wg.k, [G.H, KV]) },
      v: { weight: tf.tensor2d(Wg.v, [G.H, KV]) },
      o: { weight: tf.tensor2d(Wg.o, [G.H, G.H]) },
    };
  }

  /** HF LlamaAttention in float64: rotate q and k (rotate_half), repeat_kv, scale, causal + padding mask, softmax. */
  function gqa64(xs: number[], opts: { rope: boolean; kvOf?: (j: number) => number }): { out: number[]; probs: number[] } {
    const { T: TT, H: HH, NH: nh, NKV: nkv, HD: hd } = G;
    const kvOf = opts.kvOf ?? ((j: number) => Math.floor(j / (nh / nkv)));
    const q = matmul(xs, Wg.q, B * TT, HH, HH), k = matmul(xs, Wg.k, B * TT, HH, KV), v = matmul(xs, Wg.v, B * TT, HH, KV);
    const rope = (t: number[], width: number) => {
      if (!opts.rope) return t;
      const out = t.slice();
      for (let r = 0; r < B * TT; r++) for (let h = 0; h < width / hd; h++) for (let i = 0; i < hd / 2; i++) {
        const angle = (r % TT) * 10000 ** ((-2 * i) / hd);
        const a = r * width + h * hd + i, c = a + hd / 2;
        out[a] = t[a] * Math.cos(angle) - t[c] * Math.sin(angle);
        out[c] = t[c] * Math.cos(angle) + t[a] * Math.sin(angle);
      }
      return out;
    };
    const qr = rope(q, HH), kr = rope(k, KV);
    const context = new Array(B * TT * HH).fill(0);
    const probs: number[] = [];
    for (let b = 0; b < B; b++) for (let j = 0; j < nh; j++) for (let i = 0; i < TT; i++) {
      const g = kvOf(j);
      const scores: number[] = [];
      for (let t = 0; t < TT; t++) {
        let s = 0;
        for (let d = 0; d < hd; d++) s += qr[(b * TT + i) * HH + j * hd + d] * kr[(b * TT + t) * KV + g * hd + d];
        s /= Math.sqrt(hd);
        if (t > i) s += FLOAT32_MIN;
        if (maskG[b * TT + t] === 0) s += FLOAT32_MIN;
        scores.push(s);
      }
      const p = softmaxRow(scores.map((s) => (Number.isFinite(s) ? s : -Infinity)));
      probs.push(...p);
      for (let d = 0; d < hd; d++) context[(b * TT + i) * HH + j * hd + d] = p.reduce((acc, pt, t) => acc + pt * v[(b * TT + t) * KV + g * hd + d], 0);
    }
    return { out: matmul(context, Wg.o, B * TT, HH, HH), probs };
  }

  const maskBias = () => tf.add(paddingMaskBias(tf.tensor2d(maskG, [B, G.T], 'int32'), FLOAT32_MIN), causalMaskBias(G.T, G.T, FLOAT32_MIN));
  const angles = () => rotaryAngles(tables, tf.tensor2d([[0, 1, 2, 3, 4, 5]], [1, G.T], 'int32'));

  it.each([false, true])('forward matches float64 repeat_kv (rotary %s)', (rope) => {
    const [out, probs, kShape] = tf.tidy(() => {
      const r = selfAttention(tf.tensor3d(xg, [B, G.T, G.H]), gqaParams(), { heads: G.NH, kvHeads: G.NKV, scaleScores: true, bias: maskBias(), rotary: rope ? angles() : undefined });
      return [r.out.dataSync(), r.probs.dataSync(), r.kv.k.shape];
    });
    const ref = gqa64(xg, { rope });
    expect(maxAbsDiff(probs, ref.probs)).toBeLessThan(1e-6);
    expect(maxAbsDiff(out, ref.out)).toBeLessThan(5e-6);
    expect(kShape).toEqual([B, G.NKV, G.T, G.HD]);
  });

  it('query head j reads key/value head ⌊j·nkv/nh⌋, not j mod nkv (a wrong grouping is visible)', () => {
    expect(maxAbsDiff(gqa64(xg, { rope: true }).out, gqa64(xg, { rope: true, kvOf: (j) => j % G.NKV }).out)).toBeGreaterThan(1e-3);
  });

  it('gradient w.r.t. the input matches central differences', () => {
    const proj = rand(B * G.T * G.H, 75);
    const g = tf.tidy(() =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(selfAttention(t, gqaParams(), { heads: G.NH, kvHeads: G.NKV, scaleScores: true, bias: maskBias(), rotary: angles() }).out, tf.tensor3d(proj, [B, G.T, G.H]))))(tf.tensor3d(xg, [B, G.T, G.H])).dataSync(),
    );
    expect(maxAbsDiff(g, numericGrad((xs) => dot(gqa64(xs, { rope: true }).out, proj), xg))).toBeLessThan(2e-4);
  });

  it('cached decoding rotates each new position at its offset; the cache holds only the key/value heads', () => {
    const full = tf.tidy(() => selfAttention(tf.tensor3d(xg, [B, G.T, G.H]), gqaParams(), { heads: G.NH, kvHeads: G.NKV, scaleScores: true, bias: causalMaskBias(G.T, G.T, FLOAT32_MIN), rotary: angles() }).out.dataSync());
    const stepwise: number[] = [];
    const cacheShapes: number[][] = [];
    let past: { k: tf.Tensor; v: tf.Tensor } | undefined;
    for (let t = 0; t < G.T; t++) {
      const xt = tf.tensor3d(xg, [B, G.T, G.H]).slice([0, t, 0], [B, 1, G.H]);
      const rotary = rotaryAngles(tables, tf.tensor2d([[t]], [1, 1], 'int32'));
      const r = selfAttention(xt, gqaParams(), { heads: G.NH, kvHeads: G.NKV, scaleScores: true, bias: causalMaskBias(1, t + 1, FLOAT32_MIN, t), rotary }, past);
      past = r.kv;
      cacheShapes.push(r.kv.k.shape, r.kv.v.shape);
      const o = r.out.dataSync();
      for (let b = 0; b < B; b++) for (let h = 0; h < G.H; h++) stepwise[(b * G.T + t) * G.H + h] = o[b * G.H + h];
    }
    expect(cacheShapes.at(-1)).toEqual([B, G.NKV, G.T, G.HD]);
    expect(cacheShapes.every((s) => s[1] === G.NKV)).toBe(true);
    expect(maxAbsDiff(stepwise, full)).toBeLessThan(1e-6);
  });
});

describe('SwiGLU MLP (LLaMA): down(silu(gate(x)) * up(x))', () => {
  const F = 7;
  const wu = rand(H * F, 80, 0.5), wg = rand(H * F, 81, 0.5), wd = rand(F * H, 82, 0.5);
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const swiglu64 = (xs: number[]) => {
    const up = matmul(xs, wu, B * T, H, F);
    return matmul(matmul(xs, wg, B * T, H, F).map((g, i) => silu(g) * up[i]), wd, B * T, F, H);
  };
  const params = () => ({ fcIn: { weight: tf.tensor2d(wu, [H, F]) }, fcGate: { weight: tf.tensor2d(wg, [H, F]) }, fcOut: { weight: tf.tensor2d(wd, [F, H]) } });

  it('forward matches float64', () => {
    expect(maxAbsDiff(tf.tidy(() => mlp(tf.tensor3d(x, [B, T, H]), params(), 'silu').dataSync()), swiglu64(x))).toBeLessThan(2e-6);
  });

  it('gradient w.r.t. the input matches central differences', () => {
    const proj = rand(B * T * H, 83);
    const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(mlp(t, params(), 'silu'), tf.tensor3d(proj, [B, T, H]))))(tf.tensor3d(x, [B, T, H])).dataSync());
    expect(maxAbsDiff(g, numericGrad((xs) => dot(swiglu64(xs), proj), x))).toBeLessThan(1e-4);
  });
});
