/**
 * The kernels Parity registers on the wasm backend: UnsortedSegmentSum (gather's gradient) and the
 * BatchMatMul wrapper, each checked forward and through a gradient against float64 math.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { missingKernels } from '../../src/backend/kernels/register.ts';
import { tf } from '../../src/backend/tf.ts';
import { matmul, maxAbsDiff, rand, transpose } from '../support/ref64.ts';

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('wasm kernels', () => {
  it('training kernels are all registered', () => {
    expect(missingKernels('wasm')).toEqual([]);
  });

  it('UnsortedSegmentSum sums rows per segment and drops out-of-range ids', () => {
    const x = rand(5 * 3, 1);
    const ids = [2, 0, 2, -1, 7];
    const out = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(x, [5, 3]), tf.tensor1d(ids, 'int32'), 4).dataSync());
    const expected = new Array(12).fill(0);
    ids.forEach((id, r) => {
      if (id >= 0 && id < 4) for (let d = 0; d < 3; d++) expected[id * 3 + d] += x[r * 3 + d];
    });
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-6);
  });

  it('the gradient of gather (needs UnsortedSegmentSum) matches the float64 scatter-add', () => {
    const table = rand(6 * 4, 2);
    const ids = [[3, 1, 3], [0, 3, 5]];
    const up = rand(2 * 3 * 4, 3);
    const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor2d(ids, [2, 3], 'int32')), tf.tensor3d(up, [2, 3, 4]))))(tf.tensor2d(table, [6, 4])).dataSync());
    const expected = new Array(24).fill(0);
    ids.flat().forEach((id, r) => { for (let d = 0; d < 4; d++) expected[id * 4 + d] += up[r * 4 + d]; });
    expect(maxAbsDiff(g, expected)).toBeLessThan(1e-6);
  });

  it.each([
    [false, false], [true, false], [false, true], [true, true],
  ])('BatchMatMul transposeA=%s transposeB=%s matches float64, batched and not', (ta, tb) => {
    const M = 5, K = 7, N = 3, BATCH = 4;
    const a = rand(BATCH * M * K, 4), b = rand(BATCH * K * N, 5);
    const stored = (data: number[], r: number, c: number, t: boolean) => (t ? Array.from({ length: BATCH }, (_, i) => transpose(data.slice(i * r * c, (i + 1) * r * c), r, c)).flat() : data);
    const out = tf.tidy(() => tf.matMul(
      tf.tensor3d(stored(a, M, K, ta), ta ? [BATCH, K, M] : [BATCH, M, K]),
      tf.tensor3d(stored(b, K, N, tb), tb ? [BATCH, N, K] : [BATCH, K, N]),
      ta, tb,
    ).dataSync());
    const expected = Array.from({ length: BATCH }, (_, i) => matmul(a.slice(i * M * K, (i + 1) * M * K), b.slice(i * K * N, (i + 1) * K * N), M, K, N)).flat();
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-5);
  });

  it('matmul gradients (transposed products) match the closed form', () => {
    const M = 6, K = 4, N = 5;
    const a = rand(M * K, 6), b = rand(K * N, 7), up = rand(M * N, 8);
    const [ga, gb] = tf.tidy(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), tf.tensor2d(up, [M, N]))))([tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])]).map((g) => g.dataSync()));
    expect(maxAbsDiff(ga, matmul(up, transpose(b, K, N), M, N, K))).toBeLessThan(1e-5);
    expect(maxAbsDiff(gb, matmul(transpose(a, M, K), up, K, M, N))).toBeLessThan(1e-5);
  });
});
