/**
 * Element-wise comparison of one output against its reference: |a − r| ≤ atol + rtol·|r|
 * (numpy.isclose, relative to the reference), NaN never close. Positions a reference leaves
 * undefined (padding) are excluded by masks, each over one axis.
 */
import { numel } from '../weightmap/checkpoint.ts';
import type { TensorComparison } from './verdict.ts';

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
): TensorComparison {
  const masks = mask === undefined ? [] : Array.isArray(mask) ? mask : [mask as PositionMask];
  const base = { name, shape, atol, rtol };
  if (actual.length !== reference.length || reference.length !== numel(shape)) {
    return { ...base, maxAbsDiff: Number.POSITIVE_INFINITY, maxRelDiff: Number.POSITIVE_INFINITY, pass: false, compared: 0 };
  }
  // strides[k] = product of shape[k+1..]; used to recover (batch, position) of a flat index.
  const strides = shape.map((_, k) => shape.slice(k + 1).reduce((a, d) => a * d, 1));
  let maxAbs = 0;
  let maxRel = 0;
  let pass = true;
  let compared = 0;
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
    if (!(diff <= atol + rtol * Math.abs(r))) pass = false;
  }
  return { ...base, maxAbsDiff: maxAbs, maxRelDiff: maxRel, pass: pass && compared > 0, compared };
}
