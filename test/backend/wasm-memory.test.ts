/**
 * What the wasm kernel replacements are for: memory. Identity (what the gradient tape clones saved
 * tensors with) shares storage, and a large matmul operand leaves no packed copy behind once the
 * call is over. Each also keeps its values: the product still matches float64 math.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { PACKED_CACHE_LIMIT } from '../../src/backend/kernels/wasm-matmul.ts';
import { tf } from '../../src/backend/tf.ts';
import { matmul, maxAbsDiff, rand } from '../support/ref64.ts';

beforeAll(async () => {
  await selectBackend('wasm');
});

const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;

describe('wasm memory', () => {
  // tf.clone runs Identity, and so does the gradient tape for every tensor a backward pass saves.
  it('a clone shares its source\'s storage and outlives it', async () => {
    const x = tf.tensor1d([1.5, -2, 3]);
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    x.dispose();
    expect([...(await y.data())]).toEqual([1.5, -2, 3]);
    y.dispose();
  });

  it('a large right-hand operand leaves no packed copy behind, and the product is exact', async () => {
    const n = 1024; // 4 MiB of float32, over PACKED_CACHE_LIMIT
    expect(n * n * 4).toBeGreaterThanOrEqual(PACKED_CACHE_LIMIT);
    const a = rand(8 * n, 1);
    const b = rand(n * n, 2);
    const A = tf.tensor2d(a, [8, n]);
    const B = tf.tensor2d(b, [n, n]);
    for (let i = 0; i < 3; i++) {
      const C = tf.matMul(A, B);
      expect(maxAbsDiff(await C.data(), matmul(a, b, 8, n, n))).toBeLessThan(1e-4);
      C.dispose();
    }
    // With XNNPACK's cache the packed B (4 MiB) would stay; freed, the heap has room for another B without growing.
    const heap = heapBytes();
    const again = tf.tensor2d(b, [n, n]);
    const other = tf.tensor2d(b, [n, n]);
    expect(heapBytes()).toBe(heap);
    for (const t of [A, B, again, other]) t.dispose();
  });
});
