/**
 * Model inputs from safetensors files (eval inputs, training batches, prompts), as host arrays
 * and as tensors: integer tensors (ids, masks, labels) as int32, floating ones (ViT's
 * pixel_values, stored as float16) widened to float32 — exact, as torch's `.float()` is.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import type { Batch } from '../models/model.ts';
import type { Checkpoint, TensorRef } from '../weightmap/checkpoint.ts';

export type HostInput =
  | { shape: number[]; dtype: 'int32'; data: Int32Array }
  | { shape: number[]; dtype: 'float32'; data: Float32Array };

export type HostBatch = Record<string, HostInput>;

const FLOATING = new Set(['F16', 'BF16', 'F32', 'F64']);

/** One stored tensor as a model input of its kind. */
export function hostInput(ref: TensorRef): HostInput {
  return FLOATING.has(ref.dtype)
    ? { shape: [...ref.shape], dtype: 'float32', data: ref.toFloat32() }
    : { shape: [...ref.shape], dtype: 'int32', data: ref.toInt32() };
}

/** Every tensor of `ckpt` (or the named ones) as model inputs. */
export function readInputs(ckpt: Checkpoint, names?: readonly string[]): HostBatch {
  const out: HostBatch = {};
  for (const ref of ckpt.tensors.values()) {
    if (names && !names.includes(ref.name)) continue;
    out[ref.name] = hostInput(ref);
  }
  return out;
}

/** Entry `index` of the leading axis: step `index` of [steps, rows, ...] batches. */
export function sliceInput(t: HostInput, index: number): HostInput {
  const size = t.data.length / t.shape[0];
  const shape = t.shape.slice(1);
  return t.dtype === 'int32'
    ? { shape, dtype: 'int32', data: t.data.subarray(index * size, (index + 1) * size) }
    : { shape, dtype: 'float32', data: t.data.subarray(index * size, (index + 1) * size) };
}

export function toBatch(host: HostBatch): Batch {
  const batch: Batch = {};
  for (const [name, t] of Object.entries(host)) batch[name] = tf.tensor(t.data, t.shape, t.dtype);
  return batch;
}

export function disposeBatch(batch: Batch): void {
  for (const t of Object.values(batch)) (t as Tensor).dispose();
}
