/** Table lookup: ids [..] -> [.., H]. Its gradient is a segment sum over the ids (see backend/kernels). */
import { tf, type Tensor } from '../backend/tf.ts';

export function embed(ids: Tensor, table: Tensor): Tensor {
  return tf.gather(table, ids); // [V, H] at [B, T] -> [B, T, H]
}

/** Position ids pastLength .. pastLength + T − 1 for every row: [1, T] (broadcast over the batch). */
export function positionIds(time: number, pastLength = 0): Tensor {
  return tf.range(pastLength, pastLength + time, 1, 'int32').reshape([1, time]);
}

/**
 * RoBERTa's position ids (HF create_position_ids_from_input_ids): real tokens count from
 * paddingIdx + 1 in order, padding tokens sit at paddingIdx. ids [B, T] -> [B, T] int32, so
 * rows 0..paddingIdx of the position table are never read by a real token.
 */
export function paddingAwarePositionIds(inputIds: Tensor, paddingIdx: number, pastLength = 0): Tensor {
  const int = (n: number) => tf.scalar(n, 'int32'); // a bare JS number would make the sum float32
  const real = tf.cast(tf.notEqual(inputIds, int(paddingIdx)), 'int32'); // [B,T] 1 = real
  const counted = tf.mul(tf.add(tf.cumsum(real, 1), int(pastLength)), real); // 1, 2, … on real tokens, 0 on pads
  return tf.add(counted, int(paddingIdx));
}
