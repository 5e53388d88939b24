/**
 * Float64 reference math for layer tests: plain loops over number[], written from the formulas
 * (torch docs, HF modeling code), sharing nothing with src/. Tensors are flat arrays + shapes.
 */
export interface T64 {
  shape: number[];
  data: number[];
}

export const t64 = (shape: number[], data: ArrayLike<number>): T64 => ({ shape, data: Array.from(data) });
export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Deterministic pseudo-random numbers (mulberry32), so tests need no seed plumbing. */
export function rand(n: number, seed: number, scale = 1): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out.push(Math.fround((u * 2 - 1) * scale));
  }
  return out;
}

/** [M,K] x [K,N] */
export function matmul(a: number[], b: number[], M: number, K: number, N: number): number[] {
  const out = new Array(M * N).fill(0);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) out[i * N + j] += a[i * K + k] * b[k * N + j];
  return out;
}

export function transpose(a: number[], rows: number, cols: number): number[] {
  const out = new Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** Applies f to each row of length n. */
export function rows(x: number[], n: number, f: (row: number[]) => number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length; i += n) out.push(...f(x.slice(i, i + n)));
  return out;
}

export function layerNormRow(row: number[], w: number[], b: number[], eps: number): number[] {
  const mean = row.reduce((a, v) => a + v, 0) / row.length;
  const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length;
  return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * w[i] + b[i]);
}

export function rmsNormRow(row: number[], w: number[], eps: number): number[] {
  const ms = row.reduce((a, v) => a + v * v, 0) / row.length;
  return row.map((v, i) => (w[i] * v) / Math.sqrt(ms + eps));
}

/** erf to ~1e-15 (Abramowitz–Stegun 7.1.26 is too coarse for a reference): series / continued fraction. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = 0;
    let term = ax;
    for (let n = 0; n < 200; n++) {
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
      term *= (-ax * ax) / (n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for the tail.
  let f = ax;
  let C = ax;
  let D = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    D = ax + an * D;
    D = 1 / D;
    C = ax + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export const geluExact = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

export function softmaxRow(row: number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}

/** Central differences of a scalar function of x, in float64. */
export function numericGrad(f: (x: number[]) => number, x: number[], h = 1e-6): number[] {
  return x.map((_, i) => {
    const plus = x.slice();
    const minus = x.slice();
    plus[i] += h;
    minus[i] -= h;
    return (f(plus) - f(minus)) / (2 * h);
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Σ c·y: a fixed random projection turns any output into the scalar a gradient test needs. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
