/**
 * The webgpu backend (Dawn + tfjs-backend-webgpu) on whatever adapter Dawn finds: on CI, Mesa's
 * software Vulkan driver (lavapipe/llvmpipe), which .ci/run installs. The kernels Parity replaces
 * (Softmax) are checked forward and through their gradient against float64 math.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { missingKernels } from '../../src/backend/kernels/register.ts';
import { type SelectedBackend } from '../../src/backend/select.ts';
import { tf } from '../../src/backend/tf.ts';
import { maxAbsDiff, rand } from '../support/ref64.ts';
import { useWebGpu } from '../support/webgpu.ts';

let backend: SelectedBackend;
beforeAll(async () => {
  backend = await useWebGpu();
});

const FLOAT32_MIN = -3.4028234663852886e38;

/** Row-wise softmax in float64: exp(x − max) / Σ exp(x − max). A row of −∞ is NaN, as in torch. */
function softmax64(x: number[], rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * cols, (r + 1) * cols);
    const max = Math.max(...row);
    const e = row.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / sum));
  }
  return out;
}

async function read(t: tf.Tensor): Promise<number[]> {
  try {
    return Array.from(await t.data());
  } finally {
    t.dispose();
  }
}

describe('webgpu backend', () => {
  it('names the adapter it computes on, and keys goldens by it', () => {
    expect(backend.name).toBe('webgpu');
    expect(backend.adapter).toBeDefined();
    expect(backend.adapter!.description.length + backend.adapter!.device.length).toBeGreaterThan(0);
    expect(backend.goldenKey).toMatch(/^webgpu-[a-z0-9-]+$/);
  });

  it('has every kernel training needs', () => {
    expect(missingKernels('webgpu')).toEqual([]);
  });

  it('softmax matches float64 on ordinary rows, wide rows and rows masked with FLOAT32_MIN', async () => {
    const cases: Array<{ rows: number; cols: number; x: number[] }> = [
      { rows: 3, cols: 5, x: rand(15, 11, 8) },
      { rows: 2, cols: 4100, x: rand(8200, 12, 20) }, // ≥ 4096 columns: the 256-wide workgroup
      // HF masking: a left-padded query sees only masked keys (FLOAT32_MIN) and future ones (−∞).
      { rows: 2, cols: 4, x: [FLOAT32_MIN, -Infinity, -Infinity, -Infinity, FLOAT32_MIN, FLOAT32_MIN, -Infinity, -Infinity] },
      { rows: 1, cols: 3, x: [0.5, FLOAT32_MIN, -Infinity] },
    ];
    for (const { rows, cols, x } of cases) {
      const ours = await read(tf.softmax(tf.tensor2d(x, [rows, cols])));
      const expected = softmax64(x, rows, cols);
      expect(ours.every(Number.isFinite), `${rows}x${cols} has no NaN`).toBe(true);
      expect(maxAbsDiff(ours, expected), `${rows}x${cols}`).toBeLessThan(1e-6);
    }
  });

  it('softmax over the last axis of a 4-d tensor, and its gradient, match float64', async () => {
    const [B, H, T] = [2, 3, 5];
    const x = rand(B * H * T * T, 21, 4);
    const up = rand(B * H * T * T, 22);
    const ours = await read(tf.softmax(tf.tensor4d(x, [B, H, T, T])));
    expect(maxAbsDiff(ours, softmax64(x, B * H * T, T))).toBeLessThan(1e-6);
    // d/dx Σ up·softmax(x) = p ⊙ (up − Σ_j up_j p_j), per row.
    const p = softmax64(x, B * H * T, T);
    const expected: number[] = [];
    for (let r = 0; r < B * H * T; r++) {
      let dot = 0;
      for (let j = 0; j < T; j++) dot += up[r * T + j] * p[r * T + j];
      for (let j = 0; j < T; j++) expected.push(p[r * T + j] * (up[r * T + j] - dot));
    }
    const g = await read(tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(t), tf.tensor4d(up, [B, H, T, T]))))(tf.tensor4d(x, [B, H, T, T]))));
    expect(maxAbsDiff(g, expected)).toBeLessThan(1e-6);
  });
});
