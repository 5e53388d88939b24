/**
 * ViT's patch embedding (reshape + matmul) against a float64 Conv2d with stride = kernel written
 * as loops from torch's definition, then flatten(2).transpose(1, 2); forward and gradients; and
 * RoBERTa's padding-aware position ids against HF's create_position_ids_from_input_ids by hand.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { paddingAwarePositionIds } from '../../src/layers/embedding.ts';
import { patchEmbed } from '../../src/layers/patch-embedding.ts';
import { useBackend } from '../support/backend.ts';
import { dot, maxAbsDiff, numericGrad, rand } from '../support/ref64.ts';

beforeAll(useBackend);

interface Sizes { B: number; C: number; H: number; W: number; O: number; p: number; pw?: number }

/** torch Conv2d(C, O, (p, pw), stride (p, pw)) on [B,C,H,W] with weight [O,C,p,pw], then [B,O,r,c] -> [B, r·c, O]. */
function conv64(px: number[], w: number[], bias: number[], s: Sizes): number[] {
  const pw = s.pw ?? s.p;
  const rows = s.H / s.p, cols = s.W / pw;
  const out = new Array(s.B * rows * cols * s.O).fill(0);
  for (let b = 0; b < s.B; b++) for (let o = 0; o < s.O; o++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    let acc = bias[o];
    for (let ch = 0; ch < s.C; ch++) for (let i = 0; i < s.p; i++) for (let j = 0; j < pw; j++) {
      acc += px[((b * s.C + ch) * s.H + r * s.p + i) * s.W + c * pw + j] * w[((o * s.C + ch) * s.p + i) * pw + j];
    }
    out[(b * rows * cols + r * cols + c) * s.O + o] = acc;
  }
  return out;
}

/** torch [O,C,p,pw] -> ours [C,p,pw,O]. */
function toOurs(w: number[], s: Sizes): number[] {
  const out = new Array(w.length);
  const k = w.length / s.O;
  for (let o = 0; o < s.O; o++) for (let i = 0; i < k; i++) out[i * s.O + o] = w[o * k + i];
  return out;
}

describe('patch embedding', () => {
  it.each([
    { B: 2, C: 3, H: 8, W: 8, O: 5, p: 4 },
    { B: 1, C: 2, H: 6, W: 9, O: 4, p: 3 }, // non-square image
    { B: 2, C: 1, H: 4, W: 4, O: 3, p: 1 }, // 1×1 patches
    { B: 2, C: 3, H: 4, W: 6, O: 5, p: 2, pw: 3 }, // non-square patches
  ] as Sizes[])('forward matches a float64 strided convolution (%o)', (s) => {
    const pw = s.pw ?? s.p;
    const px = rand(s.B * s.C * s.H * s.W, 90), w = rand(s.O * s.C * s.p * pw, 91, 0.3), bias = rand(s.O, 92, 0.1);
    const ours = tf.tidy(() => patchEmbed(tf.tensor4d(px, [s.B, s.C, s.H, s.W]), { weight: tf.tensor4d(toOurs(w, s), [s.C, s.p, pw, s.O]), bias: tf.tensor1d(bias) }, [s.p, pw]));
    expect(ours.shape).toEqual([s.B, (s.H / s.p) * (s.W / pw), s.O]);
    expect(maxAbsDiff(ours.dataSync(), conv64(px, w, bias, s))).toBeLessThan(2e-6);
    ours.dispose();
  });

  it('gradients w.r.t. pixels, kernel and bias match central differences', () => {
    const s: Sizes = { B: 2, C: 2, H: 4, W: 6, O: 3, p: 2 };
    const px = rand(s.B * s.C * s.H * s.W, 93), w = rand(s.O * s.C * s.p * s.p, 94, 0.3), bias = rand(s.O, 95, 0.1);
    const proj = rand(s.B * 6 * s.O, 96);
    const [gx, gw, gb] = tf.tidy(() =>
      tf.grads((a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(patchEmbed(a, { weight: k, bias: c }, [s.p, s.p]), tf.tensor3d(proj, [s.B, 6, s.O]))))(
        [tf.tensor4d(px, [s.B, s.C, s.H, s.W]), tf.tensor4d(toOurs(w, s), [s.C, s.p, s.p, s.O]), tf.tensor1d(bias)],
      ).map((g) => g.dataSync()),
    );
    expect(maxAbsDiff(gx, numericGrad((v) => dot(conv64(v, w, bias, s), proj), px))).toBeLessThan(1e-4);
    expect(maxAbsDiff(gw, toOurs(numericGrad((v) => dot(conv64(px, v, bias, s), proj), w), s))).toBeLessThan(1e-4);
    expect(maxAbsDiff(gb, numericGrad((v) => dot(conv64(px, w, v, s), proj), bias))).toBeLessThan(1e-4);
  });
});

describe('padding-aware position ids (RoBERTa)', () => {
  it('real tokens count from padding_idx + 1, pads sit at padding_idx, wherever the pads are', () => {
    const ids = [[0, 5, 6, 2, 1, 1], [0, 7, 1, 8, 2, 1]]; // pad = 1; the second row has a pad inside
    const [ours, dtype] = tf.tidy(() => {
      const p = paddingAwarePositionIds(tf.tensor2d(ids, [2, 6], 'int32'), 1);
      return [Array.from(p.dataSync()), p.dtype];
    });
    expect(ours).toEqual([2, 3, 4, 5, 1, 1, 2, 3, 1, 4, 5, 1]);
    expect(dtype).toBe('int32'); // ids for a gather
  });

  it('a past length shifts the real positions only', () => {
    const ours = tf.tidy(() => Array.from(paddingAwarePositionIds(tf.tensor2d([[9, 1, 9]], [1, 3], 'int32'), 1, 4).dataSync()));
    expect(ours).toEqual([1 + 4 + 1, 1, 1 + 4 + 2]);
  });
});
