/** Integer batches from safetensors files, as host arrays and as int32 tensors. */
import { tf, type Tensor } from '../backend/tf.ts';
import type { Batch } from '../models/model.ts';
import type { Checkpoint } from '../weightmap/checkpoint.ts';

export interface HostInt {
  shape: number[];
  data: Int32Array;
}

export type HostBatch = Record<string, HostInt>;

/** Every tensor of `file` as int32 (eval inputs, batches, prompts). */
export function readIntTensors(ckpt: Checkpoint, names?: readonly string[]): HostBatch {
  const out: HostBatch = {};
  for (const ref of ckpt.tensors.values()) {
    if (names && !names.includes(ref.name)) continue;
    out[ref.name] = { shape: [...ref.shape], data: ref.toInt32() };
  }
  return out;
}

export function toBatch(host: HostBatch): Batch {
  const batch: Batch = {};
  for (const [name, t] of Object.entries(host)) batch[name] = tf.tensor(t.data, t.shape, 'int32');
  return batch;
}

export function disposeBatch(batch: Batch): void {
  for (const t of Object.values(batch)) (t as Tensor).dispose();
}
