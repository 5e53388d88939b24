/**
 * Element-wise comparison of one output against its reference: |a − r| ≤ atol + rtol·|r|
 * (numpy.isclose, relative to the reference), NaN never close. Positions a reference leaves
 * undefined (padding) are excluded by masks, each over one axis.
 *
 * With the reference's float64 record of the same tensor, the tolerance follows the reference's
 * own precision: max(atol + rtol·|r|, k · noise(row)), noise(row) = max |r32 − r64| over the
 * element's row (last axis). Per row, not per element: where PyTorch's rounding happens to land on
 * the exact value, the element says nothing about the precision there (measured: 313× apart on
 * t5v11's logits), while a row — one position's hidden vector, one row of logits or attention —
 * shares its reductions and its scale.
 */
import { numel } from '../weightmap/checkpoint.ts';
import type { TensorComparison } from './verdict.ts';

/** The reference's float64 values of the tensor, and how far from them a tolerance may widen. */
export interface ForwardNoise {
  source: string;
  values64: Float64Array;
  k: number;
}

/** max |r32 − r64| per row of the last axis (a scalar is one row). */
export function rowNoise(reference: Float32Array, values64: Float64Array, shape: readonly number[]): Float64Array {
  const rowLength = shape.length === 0 ? 1 : shape[shape.length - 1];
  const rows = rowLength === 0 ? 0 : reference.length / rowLength;
  const out = new Float64Array(rows);
  for (let q = 0; q < rows; q++) {
    let max = 0;
    for (let j = q * rowLength; j < (q + 1) * rowLength; j++) {
      const n = Math.abs(reference[j] - values64[j]);
      if (n > max || Number.isNaN(n)) max = Number.isNaN(n) ? Number.POSITIVE_INFINITY : n;
    }
    out[q] = max;
  }
  return out;
}

export interface PositionMask {
  /** Axis of the position index (batch is axis 0). */
  axis: number;
  /** [B, T] with 1 = compare, 0 = skip. */
  valid: Int32Array;
  positions: number;
}

export function compareTensor(
  name: string,
  actual: Float32Array,
  reference: Float32Array,
  shape: number[],
  atol: number,
  rtol: number,
  mask?: PositionMask | readonly PositionMask[],
  noise?: ForwardNoise,
): TensorComparison {
  const masks = mask === undefined ? [] : Array.isArray(mask) ? mask : [mask as PositionMask];
  const base = { name, shape, atol, rtol };
  if (actual.length !== reference.length || reference.length !== numel(shape) || (noise && noise.values64.length !== reference.length)) {
    return { ...base, maxAbsDiff: Number.POSITIVE_INFINITY, maxRelDiff: Number.POSITIVE_INFINITY, pass: false, compared: 0 };
  }
  // strides[k] = product of shape[k+1..]; used to recover (batch, position) of a flat index.
  const strides = shape.map((_, k) => shape.slice(k + 1).reduce((a, d) => a * d, 1));
  let maxAbs = 0;
  let maxRel = 0;
  let pass = true;
  let compared = 0;
  const perRow = noise ? rowNoise(reference, noise.values64, shape) : undefined;
  const rowLength = shape.length === 0 ? 1 : shape[shape.length - 1];
  let widened = 0;
  let maxTolerance = 0;
  for (let i = 0; i < reference.length; i++) {
    let skip = false;
    for (const m of masks) {
      const b = Math.floor(i / strides[0]) % shape[0];
      const t = Math.floor(i / strides[m.axis]) % shape[m.axis];
      if (m.valid[b * m.positions + t] === 0) skip = true;
    }
    if (skip) continue;
    compared++;
    const a = actual[i];
    const r = reference[i];
    const diff = Number.isNaN(a) || Number.isNaN(r) ? Number.POSITIVE_INFINITY : Math.abs(a - r);
    if (diff > maxAbs) maxAbs = diff;
    if (r !== 0) maxRel = Math.max(maxRel, diff / Math.abs(r));
    else if (diff > 0) maxRel = Number.POSITIVE_INFINITY;
    let limit = atol + rtol * Math.abs(r);
    if (perRow) {
      const fromNoise = noise!.k * perRow[Math.floor(i / rowLength)];
      if (fromNoise > limit) {
        limit = fromNoise;
        widened++;
      }
    }
    if (limit > maxTolerance) maxTolerance = limit;
    if (!(diff <= limit)) pass = false;
  }
  const envelope = noise ? { envelope: { source: noise.source, k: noise.k, maxTolerance, widenedElements: widened } } : {};
  return { ...base, ...envelope, maxAbsDiff: maxAbs, maxRelDiff: maxRel, pass: pass && compared > 0, compared };
}
