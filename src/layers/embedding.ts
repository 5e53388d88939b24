/** Table lookup: ids [..] -> [.., H]. Its gradient is a segment sum over the ids (see backend/kernels). */
import { tf, type Tensor } from '../backend/tf.ts';

export function embed(ids: Tensor, table: Tensor): Tensor {
  return tf.gather(table, ids); // [V, H] at [B, T] -> [B, T, H]
}

/** Position ids pastLength .. pastLength + T − 1 for every row: [1, T] (broadcast over the batch). */
export function positionIds(time: number, pastLength = 0): Tensor {
  return tf.range(pastLength, pastLength + time, 1, 'int32').reshape([1, time]);
}
