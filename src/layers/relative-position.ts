/**
 * T5's relative position bias: bucket(key − query) indexes a learned [buckets, heads] table;
 * the result [1, heads, q, k] is added to every layer's scores in the stack (FORMATS.md §2).
 * Buckets are computed on the host with float32 rounding where HF computes in float32, so the
 * bucket edges match HF's exactly.
 */
import { tf, type Tensor } from '../backend/tf.ts';

const f = Math.fround;

export interface RelativeBucketSpec {
  buckets: number;
  maxDistance: number;
  bidirectional: boolean;
}

/** HF T5Attention._relative_position_bucket for one relative position r = key − query. */
export function relativePositionBucket(r: number, s: RelativeBucketSpec): number {
  let buckets = s.buckets;
  let base = 0;
  let n: number;
  if (s.bidirectional) {
    buckets = Math.floor(buckets / 2);
    if (r > 0) base = buckets;
    n = Math.abs(r);
  } else {
    n = Math.max(0, -r);
  }
  const maxExact = Math.floor(buckets / 2);
  if (n < maxExact) return base + n;
  // float32: log(n / maxExact) / log(maxDistance / maxExact) · (buckets − maxExact), truncated.
  const scaled = f(f(f(Math.log(f(n / maxExact))) / f(Math.log(s.maxDistance / maxExact))) * (buckets - maxExact));
  return base + Math.min(buckets - 1, maxExact + Math.trunc(scaled));
}

/** Bucket ids [q, k] for queries at absolute positions queryStart … queryStart + q − 1. */
export function bucketIds(queries: number, keys: number, s: RelativeBucketSpec, queryStart = 0): Int32Array {
  const ids = new Int32Array(queries * keys);
  for (let i = 0; i < queries; i++) for (let j = 0; j < keys; j++) ids[i * keys + j] = relativePositionBucket(j - (queryStart + i), s);
  return ids;
}

/** table [buckets, heads] -> bias [1, heads, q, k]. */
export function relativePositionBias(table: Tensor, queries: number, keys: number, s: RelativeBucketSpec, queryStart = 0): Tensor {
  const heads = table.shape[1] as number;
  const ids = tf.tensor2d(bucketIds(queries, keys, s, queryStart), [queries, keys], 'int32');
  return tf.gather(table, ids).transpose([2, 0, 1]).reshape([1, heads, queries, keys]); // [q,k,nh] -> [1,nh,q,k]
}
