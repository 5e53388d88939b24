/**
 * Additive attention masks. The fill value is the caller's choice because references differ:
 * HF ≥ 4.21 adds finfo(float32).min, older HF and Megatron add −10000. Only fully masked rows
 * behave differently, and no reference output reads those.
 */
import { tf, type Tensor } from '../backend/tf.ts';

/** finfo(torch.float32).min, what HF 4.30.2 adds at masked positions. */
export const FLOAT32_MIN = -3.4028234663852886e38;
/** What Megatron-LM and HF before ≈4.21 add at masked positions. */
export const MEGATRON_MASK_FILL = -10000;

/** [B, Tk] with 1 = attend, 0 = padding  ->  [B, 1, 1, Tk] additive bias (0 or fill). */
export function paddingMaskBias(attentionMask: Tensor, fill: number): Tensor {
  const [batch, keys] = attentionMask.shape;
  const keep = tf.cast(attentionMask, 'float32');
  return tf.mul(tf.sub(1, keep), fill).reshape([batch, 1, 1, keys]);
}

/**
 * [1, 1, Tq, Tk] additive bias hiding future keys. Query i sits at absolute position
 * `pastLength + i` (non-zero when decoding with a key/value cache) and sees keys 0..that position.
 */
export function causalMaskBias(queries: number, keys: number, fill: number, pastLength = 0): Tensor {
  const values = new Float32Array(queries * keys);
  for (let i = 0; i < queries; i++) {
    for (let j = pastLength + i + 1; j < keys; j++) values[i * keys + j] = fill;
  }
  return tf.tensor4d(values, [1, 1, queries, keys]);
}
