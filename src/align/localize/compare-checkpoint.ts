/**
 * One checkpoint of the divergence walk: our sub-block value against the reference's, as the
 * largest |diff| (with the forward rule |a − r| ≤ atol + rtol·|r| deciding pass) and the cosine
 * similarity, which tells a scaled or permuted value (cosine ≈ 1 or ≈ 0) from rounding noise.
 *
 * - Positions a padding mask marks are skipped (hidden positions, attention queries).
 * - Two mask fills are equal whatever their value: HF adds finfo.min to a score once, or twice
 *   (−inf) where a padded key is also a future one; "masked" against "masked" is agreement, and
 *   "masked" against a finite score is a fault (a wrong mask) that shows at the scores.
 * - Our value may broadcast over the reference's (a [1, nh, T, T] bias against HF's [B, nh, T, T]).
 * - Cosine is taken in float64 over the elements where both sides are finite and below 1e30 in
 *   magnitude, so mask fills (equal on both sides, and compared by |diff|) do not swamp it.
 */
import type { PositionMask } from '../compare-tensor.ts';
import type { HostValue } from '../forward-run.ts';

export interface ValueComparison {
  maxAbsDiff: number;
  maxRelDiff: number;
  cosine: number;
  pass: boolean;
  compared: number;
  /** Set when the shapes cannot be compared (and then pass is false). */
  shapeMismatch?: string;
}

const FILL = 1e30;

export function compareValues(ours: HostValue, ref: HostValue, atol: number, rtol: number, masks: readonly PositionMask[] = []): ValueComparison {
  const shape = ref.shape;
  const rank = shape.length;
  const broadcast = !sameShape(ours.shape, shape);
  if (broadcast && !broadcastsTo(ours.shape, shape)) {
    return { maxAbsDiff: Infinity, maxRelDiff: Infinity, cosine: 0, pass: false, compared: 0, shapeMismatch: `ours [${ours.shape.join(',')}] vs reference [${shape.join(',')}]` };
  }
  const strides = shape.map((_, k) => shape.slice(k + 1).reduce((a, d) => a * d, 1));
  const oursStrides = ours.shape.map((_, k) => ours.shape.slice(k + 1).reduce((a, d) => a * d, 1));
  const usable = masks.filter((m) => m.axis < rank && shape[m.axis] === m.positions && m.valid.length === shape[0] * m.positions);
  let maxAbs = 0;
  let maxRel = 0;
  let pass = true;
  let compared = 0;
  let dot = 0;
  let na = 0;
  let nr = 0;
  const n = ref.data.length;
  for (let i = 0; i < n; i++) {
    let skip = false;
    for (const m of usable) {
      const b = Math.floor(i / strides[0]) % shape[0];
      const t = Math.floor(i / strides[m.axis]) % shape[m.axis];
      if (m.valid[b * m.positions + t] === 0) {
        skip = true;
        break;
      }
    }
    if (skip) continue;
    let j = i;
    if (broadcast) {
      j = 0;
      for (let k = 0; k < rank; k++) if (ours.shape[k] !== 1) j += (Math.floor(i / strides[k]) % shape[k]) * oursStrides[k];
    }
    const a = ours.data[j];
    const r = ref.data[i];
    compared++;
    const bothFills = a <= -FILL && r <= -FILL;
    const diff = a === r || bothFills ? 0 : Number.isNaN(a) || Number.isNaN(r) ? Infinity : Math.abs(a - r);
    if (diff > maxAbs) maxAbs = diff;
    if (r !== 0 && !bothFills) maxRel = Math.max(maxRel, diff / Math.abs(r));
    else if (diff > 0) maxRel = Infinity;
    if (!(diff <= atol + rtol * (bothFills ? 0 : Math.abs(r)))) pass = false;
    if (Math.abs(a) < FILL && Math.abs(r) < FILL) {
      dot += a * r;
      na += a * a;
      nr += r * r;
    }
  }
  const cosine = na === 0 && nr === 0 ? 1 : na === 0 || nr === 0 ? 0 : dot / Math.sqrt(na * nr);
  return { maxAbsDiff: maxAbs, maxRelDiff: maxRel, cosine, pass: pass && compared > 0, compared };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function broadcastsTo(from: readonly number[], to: readonly number[]): boolean {
  return from.length === to.length && from.every((d, i) => d === to[i] || d === 1);
}
