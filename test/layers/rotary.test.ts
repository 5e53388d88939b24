/**
 * Rotary position embedding against float64 math written from HF's LlamaRotaryEmbedding and
 * apply_rotary_pos_emb (rotate_half: channel i pairs with i + d/2), forward and gradient; the
 * position offset of cached decoding; and that the interleaved-pairs convention is told apart.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { applyRotary, rotaryAngles, rotaryTables } from '../../src/layers/rotary.ts';
import { useBackend } from '../support/backend.ts';
import { dot, maxAbsDiff, numericGrad, rand } from '../support/ref64.ts';

beforeAll(useBackend);

const B = 2, NH = 3, T = 5, D = 8;
const THETA = 10000;
const x = rand(B * NH * T * D, 61);

/** q'[i] = q[i]·cos(p·ω_i) − q[i+d/2]·sin(p·ω_i); q'[i+d/2] = q[i+d/2]·cos(p·ω_i) + q[i]·sin(p·ω_i), ω_i = θ^(−2i/d). */
function rope64(xs: number[], positions: (b: number, t: number) => number, theta = THETA, interleaved = false): number[] {
  const out = new Array(xs.length).fill(0);
  const half = D / 2;
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let t = 0; t < T; t++) {
    const base = ((b * NH + h) * T + t) * D;
    for (let i = 0; i < half; i++) {
      const angle = positions(b, t) * theta ** ((-2 * i) / D);
      const [a, c] = interleaved ? [base + 2 * i, base + 2 * i + 1] : [base + i, base + half + i];
      out[a] = xs[a] * Math.cos(angle) - xs[c] * Math.sin(angle);
      out[c] = xs[c] * Math.cos(angle) + xs[a] * Math.sin(angle);
    }
  }
  return out;
}

const tables = rotaryTables(D, THETA, 64);
const ours = (xs: number[], positionIds: number[][]) =>
  tf.tidy(() => applyRotary(tf.tensor4d(xs, [B, NH, T, D]), rotaryAngles(tables, tf.tensor2d(positionIds, [positionIds.length, T], 'int32'))).dataSync());

describe('rotary position embedding', () => {
  it('forward matches float64 at positions 0..T−1 (one row of ids broadcast over the batch)', () => {
    expect(maxAbsDiff(ours(x, [[0, 1, 2, 3, 4]]), rope64(x, (_b, t) => t))).toBeLessThan(2e-6);
  });

  it('forward matches float64 at per-row positions (left-padded prompts: cumsum(mask) − 1, pads at 1)', () => {
    const ids = [[1, 1, 0, 1, 2], [7, 8, 9, 10, 11]];
    expect(maxAbsDiff(ours(x, ids), rope64(x, (b, t) => ids[b][t]))).toBeLessThan(1e-5);
  });

  it('position 0 is the identity, and HF θ^(−2i/d) in float32 is what the table holds', () => {
    expect(maxAbsDiff(ours(x, [[0, 0, 0, 0, 0]]), x)).toBe(0);
    const f = Math.fround;
    for (let i = 0; i < D / 2; i++) expect(tables.cos[3 * D + i]).toBe(f(Math.cos(f(3 * f(1 / f(THETA ** f((2 * i) / D)))))));
  });

  it('the rotate_half convention is not the interleaved one (a swapped convention is visible)', () => {
    expect(maxAbsDiff(rope64(x, (_b, t) => t), rope64(x, (_b, t) => t, THETA, true))).toBeGreaterThan(1e-2);
  });

  it('θ is read, not assumed: θ = 500000 differs from 10000', () => {
    const other = tf.tidy(() => applyRotary(tf.tensor4d(x, [B, NH, T, D]), rotaryAngles(rotaryTables(D, 500000, 8), tf.tensor2d([[0, 1, 2, 3, 4]], [1, T], 'int32'))).dataSync());
    expect(maxAbsDiff(other, rope64(x, (_b, t) => t, 500000))).toBeLessThan(2e-6);
    expect(maxAbsDiff(other, rope64(x, (_b, t) => t))).toBeGreaterThan(1e-3);
  });

  it('gradient w.r.t. the input matches central differences', () => {
    const proj = rand(x.length, 62);
    const g = tf.tidy(() => {
      const angles = rotaryAngles(tables, tf.tensor2d([[2, 3, 4, 5, 6]], [1, T], 'int32'));
      return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(applyRotary(t, angles), tf.tensor4d(proj, [B, NH, T, D]))))(tf.tensor4d(x, [B, NH, T, D])).dataSync();
    });
    expect(maxAbsDiff(g, numericGrad((xs) => dot(rope64(xs, (_b, t) => t + 2), proj), x))).toBeLessThan(1e-4);
  });
});
