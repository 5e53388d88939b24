/** Cross-entropy, LM logits, pooler, embeddings and a whole transformer block against float64. */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { embed } from '../../src/layers/embedding.ts';
import { lmLogits, pooler } from '../../src/layers/heads.ts';
import { crossEntropy, HF_IGNORE_INDEX } from '../../src/layers/losses.ts';
import { transformerLayer } from '../../src/layers/transformer-layer.ts';
import { useBackend } from '../support/backend.ts';
import { geluExact, layerNormRow, matmul, maxAbsDiff, rand, rows, softmaxRow } from '../support/ref64.ts';

beforeAll(useBackend);

describe('crossEntropy', () => {
  const N = 6, C = 7;
  const logits = rand(N * C, 60, 3);
  const targets = [0, 6, HF_IGNORE_INDEX, 3, 3, HF_IGNORE_INDEX];

  const ref = (ignore: number) => {
    let sum = 0, count = 0;
    for (let i = 0; i < N; i++) {
      if (targets[i] === ignore) continue;
      const p = softmaxRow(logits.slice(i * C, (i + 1) * C));
      sum -= Math.log(p[targets[i]]);
      count++;
    }
    return sum / count;
  };

  it('is the mean over targets that are not ignored', () => {
    const ours = tf.tidy(() => crossEntropy(tf.tensor2d(logits, [N, C]), tf.tensor1d(targets, 'int32'), HF_IGNORE_INDEX).dataSync()[0]);
    expect(Math.abs(ours - ref(HF_IGNORE_INDEX))).toBeLessThan(1e-6);
  });

  it('gradient is (softmax − onehot)/count on kept rows and 0 on ignored rows', () => {
    const g = tf.tidy(() => tf.grad((l: tf.Tensor) => crossEntropy(l, tf.tensor1d(targets, 'int32'), HF_IGNORE_INDEX))(tf.tensor2d(logits, [N, C])).dataSync());
    const count = targets.filter((t) => t !== HF_IGNORE_INDEX).length;
    const expected: number[] = [];
    for (let i = 0; i < N; i++) {
      const p = softmaxRow(logits.slice(i * C, (i + 1) * C));
      for (let c = 0; c < C; c++) expected.push(targets[i] === HF_IGNORE_INDEX ? 0 : (p[c] - (c === targets[i] ? 1 : 0)) / count);
    }
    expect(maxAbsDiff(g, expected)).toBeLessThan(1e-7);
  });

  it('every target ignored gives NaN, as torch does', () => {
    const v = tf.tidy(() => crossEntropy(tf.tensor2d(logits.slice(0, C), [1, C]), tf.tensor1d([-100], 'int32'), HF_IGNORE_INDEX).dataSync()[0]);
    expect(Number.isNaN(v)).toBe(true);
  });
});

describe('heads and embeddings', () => {
  it('lmLogits = h·Eᵀ + bias', () => {
    const h = rand(2 * 3 * 4, 70), E = rand(5 * 4, 71), bias = rand(5, 72);
    const ours = tf.tidy(() => lmLogits(tf.tensor3d(h, [2, 3, 4]), tf.tensor2d(E, [5, 4]), tf.tensor1d(bias)).dataSync());
    const Et: number[] = [];
    for (let d = 0; d < 4; d++) for (let v = 0; v < 5; v++) Et.push(E[v * 4 + d]);
    expect(maxAbsDiff(ours, matmul(h, Et, 6, 4, 5).map((v, i) => v + bias[i % 5]))).toBeLessThan(1e-6);
  });

  it('pooler = tanh(dense(h[:, 0]))', () => {
    const h = rand(2 * 3 * 4, 73), w = rand(16, 74), b = rand(4, 75);
    const ours = tf.tidy(() => pooler(tf.tensor3d(h, [2, 3, 4]), { weight: tf.tensor2d(w, [4, 4]), bias: tf.tensor1d(b) }).dataSync());
    const first = [...h.slice(0, 4), ...h.slice(12, 16)];
    expect(maxAbsDiff(ours, matmul(first, w, 2, 4, 4).map((v, i) => Math.tanh(v + b[i % 4])))).toBeLessThan(1e-6);
  });

  it('embedding gradient sums the upstream rows of repeated ids (gather backward)', () => {
    const table = rand(5 * 3, 76), ids = [1, 4, 1, 0, 1, 2];
    const upstream = rand(6 * 3, 77);
    const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embed(tf.tensor1d(ids, 'int32'), t), tf.tensor2d(upstream, [6, 3]))))(tf.tensor2d(table, [5, 3])).dataSync());
    const expected = new Array(15).fill(0);
    ids.forEach((id, r) => { for (let d = 0; d < 3; d++) expected[id * 3 + d] += upstream[r * 3 + d]; });
    expect(maxAbsDiff(g, expected)).toBeLessThan(1e-6);
  });
});

describe('transformerLayer', () => {
  const B = 1, T = 3, H = 4, F = 8;
  const x = rand(B * T * H, 80);
  const lin = (seed: number, i: number, o: number) => ({ w: rand(i * o, seed, 0.5), b: rand(o, seed + 1, 0.1) });
  const P = { q: lin(81, H, H), k: lin(83, H, H), v: lin(85, H, H), o: lin(87, H, H), fi: lin(89, H, F), fo: lin(91, F, H) };
  const n1 = { w: rand(H, 93).map((v) => 1 + v), b: rand(H, 94) }, n2 = { w: rand(H, 95).map((v) => 1 + v), b: rand(H, 96) };

  /** Single-head float64 block, pre or post norm. */
  function block64(placement: 'pre' | 'post'): number[] {
    const dense = (inp: number[], p: { w: number[]; b: number[] }, i: number, o: number) => matmul(inp, p.w, T, i, o).map((v, k) => v + p.b[k % o]);
    const ln = (inp: number[], n: { w: number[]; b: number[] }) => rows(inp, H, (r) => layerNormRow(r, n.w, n.b, 1e-5));
    const attn = (h: number[]) => {
      const q = dense(h, P.q, H, H), k = dense(h, P.k, H, H), v = dense(h, P.v, H, H);
      const ctx: number[] = [];
      for (let i = 0; i < T; i++) {
        const s = [0, 1, 2].map((j) => q.slice(i * H, i * H + H).reduce((a, qv, d) => a + qv * k[j * H + d], 0) / Math.sqrt(H));
        const p = softmaxRow(s);
        for (let d = 0; d < H; d++) ctx.push(p.reduce((a, pj, j) => a + pj * v[j * H + d], 0));
      }
      return dense(ctx, P.o, H, H);
    };
    const ffn = (h: number[]) => dense(dense(h, P.fi, H, F).map(geluExact), P.fo, F, H);
    const add = (a: number[], b: number[]) => a.map((v, i) => v + b[i]);
    if (placement === 'post') {
      const a = ln(add(x, attn(x)), n1);
      return ln(add(a, ffn(a)), n2);
    }
    const a = add(x, attn(ln(x, n1)));
    return add(a, ffn(ln(a, n2)));
  }

  it.each(['pre', 'post'] as const)('%s-LN block matches float64', (placement) => {
    const ours = tf.tidy(() => {
      const L = (p: { w: number[]; b: number[] }, i: number, o: number) => ({ weight: tf.tensor2d(p.w, [i, o]), bias: tf.tensor1d(p.b) });
      return transformerLayer(
        {
          selfAttn: { q: L(P.q, H, H), k: L(P.k, H, H), v: L(P.v, H, H), o: L(P.o, H, H) },
          selfAttnNorm: { weight: tf.tensor1d(n1.w), bias: tf.tensor1d(n1.b) },
          mlp: { fcIn: L(P.fi, H, F), fcOut: L(P.fo, F, H) },
          mlpNorm: { weight: tf.tensor1d(n2.w), bias: tf.tensor1d(n2.b) },
        },
        { heads: 1, scaleScores: true, placement, norm: { kind: 'layer', eps: 1e-5 }, activation: 'gelu' },
        { x: tf.tensor3d(x, [B, T, H]) },
      ).out.dataSync();
    });
    expect(maxAbsDiff(ours, block64(placement))).toBeLessThan(3e-6);
    expect(maxAbsDiff(ours, block64(placement === 'pre' ? 'post' : 'pre'))).toBeGreaterThan(1e-2);
  });
});
