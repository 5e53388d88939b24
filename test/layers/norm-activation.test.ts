/**
 * LayerNorm, RMS norm and the activations against float64 formulas: forward values, and
 * gradients against central differences of the float64 function.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { activation, type Activation } from '../../src/layers/activations.ts';
import { layerNorm, rmsNorm } from '../../src/layers/norm.ts';
import { useBackend } from '../support/backend.ts';
import { dot, geluExact, geluTanh, layerNormRow, maxAbsDiff, numericGrad, rand, rmsNormRow, rows } from '../support/ref64.ts';

beforeAll(useBackend);

const H = 16;
const x = rand(3 * H, 1, 2); // [3, H]
const w = rand(H, 2, 1).map((v) => 1 + v);
const b = rand(H, 3, 0.5);
const proj = rand(3 * H, 4); // fixed projection for a scalar objective

describe('layerNorm', () => {
  it.each([1e-12, 1e-5, 1e-3])('forward matches float64 with eps %s', (eps) => {
    const ours = tf.tidy(() => layerNorm(tf.tensor2d(x, [3, H]), { weight: tf.tensor1d(w), bias: tf.tensor1d(b) }, eps).dataSync());
    expect(maxAbsDiff(ours, rows(x, H, (r) => layerNormRow(r, w, b, eps)))).toBeLessThan(2e-6);
  });

  it('uses the eps it is given (1e-5 vs 1e-12 differ measurably at small variance)', () => {
    const small = x.map((v) => v * 0.01);
    const run = (eps: number) => tf.tidy(() => layerNorm(tf.tensor2d(small, [3, H]), { weight: tf.tensor1d(w), bias: tf.tensor1d(b) }, eps).dataSync());
    expect(maxAbsDiff(run(1e-12), run(1e-5))).toBeGreaterThan(1e-3);
  });

  it('gradients match central differences for input, weight and bias', () => {
    const eps = 1e-5;
    const f64 = (xx: number[], ww: number[], bb: number[]) => dot(rows(xx, H, (r) => layerNormRow(r, ww, bb, eps)), proj);
    const [gx, gw, gb] = tf.tidy(() => {
      const f = (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(a, { weight: ww, bias: bb }, eps), tf.tensor2d(proj, [3, H])));
      return tf.grads(f)([tf.tensor2d(x, [3, H]), tf.tensor1d(w), tf.tensor1d(b)]).map((g) => g.dataSync());
    });
    expect(maxAbsDiff(gx, numericGrad((v) => f64(v, w, b), x))).toBeLessThan(1e-4);
    expect(maxAbsDiff(gw, numericGrad((v) => f64(x, v, b), w))).toBeLessThan(1e-4);
    expect(maxAbsDiff(gb, numericGrad((v) => f64(x, w, v), b))).toBeLessThan(1e-4);
  });
});

describe('rmsNorm (T5LayerNorm, LlamaRMSNorm)', () => {
  it('forward: no mean subtraction, no bias', () => {
    const ours = tf.tidy(() => rmsNorm(tf.tensor2d(x, [3, H]), tf.tensor1d(w), 1e-6).dataSync());
    expect(maxAbsDiff(ours, rows(x, H, (r) => rmsNormRow(r, w, 1e-6)))).toBeLessThan(2e-6);
    // A LayerNorm would differ: the rows have non-zero mean.
    expect(maxAbsDiff(ours, rows(x, H, (r) => layerNormRow(r, w, new Array(H).fill(0), 1e-6)))).toBeGreaterThan(1e-2);
  });

  it('gradients match central differences', () => {
    const f64 = (xx: number[], ww: number[]) => dot(rows(xx, H, (r) => rmsNormRow(r, ww, 1e-6)), proj);
    const [gx, gw] = tf.tidy(() =>
      tf.grads((a: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a, ww, 1e-6), tf.tensor2d(proj, [3, H]))))([tf.tensor2d(x, [3, H]), tf.tensor1d(w)]).map((g) => g.dataSync()),
    );
    expect(maxAbsDiff(gx, numericGrad((v) => f64(v, w), x))).toBeLessThan(1e-4);
    expect(maxAbsDiff(gw, numericGrad((v) => f64(x, v), w))).toBeLessThan(1e-4);
  });
});

const ACTS: Array<[Activation, (v: number) => number]> = [
  ['gelu', geluExact],
  ['gelu_new', geluTanh],
  ['gelu_fast', (v) => 0.5 * v * (1 + Math.tanh(0.7978845608 * (v + 0.044715 * v ** 3)))],
  ['relu', (v) => Math.max(0, v)],
  ['quick_gelu', (v) => v / (1 + Math.exp(-1.702 * v))],
  ['tanh', Math.tanh],
  ['silu', (v) => v / (1 + Math.exp(-v))],
  ['swish', (v) => v / (1 + Math.exp(-v))],
];

describe('activations', () => {
  const xs = rand(401, 9, 6);
  it.each(ACTS)('%s forward matches its formula', (name, ref) => {
    const ours = tf.tidy(() => activation(tf.tensor1d(xs), name).dataSync());
    expect(maxAbsDiff(ours, xs.map(ref))).toBeLessThan(3e-6);
  });

  it.each(ACTS.filter(([n]) => n !== 'relu'))('%s derivative matches central differences', (name, ref) => {
    const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(activation(t, name)))(tf.tensor1d(xs)).dataSync());
    const numeric = xs.map((v) => (ref(v + 1e-6) - ref(v - 1e-6)) / 2e-6);
    expect(maxAbsDiff(g, numeric)).toBeLessThan(1e-4);
  });

  it('silu stays finite where e^−x overflows float32: value −0 and gradient 0, as torch gives', () => {
    const [y, g] = tf.tidy(() => {
      const t = tf.tensor1d([-100, -90, 100]);
      return [activation(t, 'silu').dataSync(), tf.grad((u: tf.Tensor) => tf.sum(activation(u, 'silu')))(t).dataSync()];
    });
    expect(Array.from(y)).toEqual([-0, -0, 100]);
    expect(Array.from(g).every(Number.isFinite)).toBe(true);
    expect(Math.abs(g[0])).toBeLessThan(1e-30);
  });

  it('exact and tanh GELU are different functions (a swapped variant is visible)', () => {
    const [a, c] = tf.tidy(() => [activation(tf.tensor1d(xs), 'gelu').dataSync(), activation(tf.tensor1d(xs), 'gelu_new').dataSync()]);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-4);
  });
});
