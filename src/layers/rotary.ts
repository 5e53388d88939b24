/**
 * Rotary position embedding in HF's rotate_half convention (LlamaRotaryEmbedding,
 * apply_rotary_pos_emb, transformers 4.33): head dimension d is split into two halves, not
 * interleaved pairs; channel i and i + d/2 rotate together by angle position · θ^(−2i/d).
 * Applied to queries and keys after their projection and before the key/value cache, so a cache
 * holds rotated keys and a cached step rotates only its own new positions.
 */
import { tf, type Tensor } from '../backend/tf.ts';

const f = Math.fround;

/** cos and sin of every angle, [positions, d] row-major, float32 as HF builds its cache. */
export interface RotaryTables {
  headDim: number;
  positions: number;
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * HF computes in float32: inv_freq = 1 / θ^(arange(0, d, 2) / d); freqs = outer(arange(P), inv_freq);
 * emb = cat(freqs, freqs); cos/sin of emb. Each float32 operation is rounded here the same way;
 * cos and sin are taken in float64 and rounded once (torch's float32 kernels are within 1 ulp).
 */
export function rotaryTables(headDim: number, theta: number, positions: number): RotaryTables {
  if (headDim % 2 !== 0) throw new Error(`rotary embedding needs an even head dimension, got ${headDim}`);
  const half = headDim / 2;
  const invFreq = Array.from({ length: half }, (_, i) => f(1 / f(Math.pow(theta, f((2 * i) / headDim)))));
  const cos = new Float32Array(positions * headDim);
  const sin = new Float32Array(positions * headDim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = f(p * invFreq[i]);
      cos[p * headDim + i] = cos[p * headDim + half + i] = Math.cos(angle);
      sin[p * headDim + i] = sin[p * headDim + half + i] = Math.sin(angle);
    }
  }
  return { headDim, positions, cos, sin };
}

/** cos and sin at the positions of one forward: [B|1, 1, T, d], broadcast over heads. */
export interface RotaryAngles {
  cos: Tensor;
  sin: Tensor;
}

/** Looks up the angles of `positionIds` [B|1, T] (every id < tables.positions). */
export function rotaryAngles(tables: RotaryTables, positionIds: Tensor): RotaryAngles {
  const [rows, time] = positionIds.shape as [number, number];
  const at = (table: Float32Array) => tf.gather(tf.tensor2d(table, [tables.positions, tables.headDim]), positionIds).reshape([rows, 1, time, tables.headDim]); // [P,d] at [B,T] -> [B,1,T,d]
  return { cos: at(tables.cos), sin: at(tables.sin) };
}

/** x·cos + rotate_half(x)·sin with rotate_half(x) = cat(−x₂, x₁): [B, h, T, d] -> [B, h, T, d]. */
export function applyRotary(x: Tensor, angles: RotaryAngles): Tensor {
  const [x1, x2] = tf.split(x, 2, 3); // [B,h,T,d] -> 2 x [B,h,T,d/2]
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  return tf.add(tf.mul(x, angles.cos), tf.mul(rotated, angles.sin));
}
