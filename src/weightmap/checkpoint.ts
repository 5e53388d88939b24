/**
 * The one type every checkpoint reader produces: a read-only map from the file's own tensor names
 * to lazily read tensors. Readers know file formats, never model families; maps (weightmap/maps)
 * know model families, never file formats.
 */
import { InputError } from '../errors.ts';

/** Element types as safetensors spells them; torch storages and Megatron shards map onto these. */
export type DType =
  | 'BOOL' | 'U8' | 'I8' | 'I16' | 'U16' | 'I32' | 'U32' | 'I64' | 'U64'
  | 'F16' | 'BF16' | 'F32' | 'F64'
  | 'C64'
  | 'F8_E5M2' | 'F8_E4M3' | 'F8_E8M0' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ' | 'F4' | 'F6_E2M3' | 'F6_E3M2';

export interface TensorRef {
  /** Name as stored in the checkpoint (after merging shards, for Megatron directories). */
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** File the bytes come from (the first shard for merged tensors); used in error messages. */
  readonly file: string;
  /** Values widened to float32 (F16/BF16/F64/integers converted). C order. */
  toFloat32(): Float32Array;
  /**
   * Values as float64, exact for F64 (where toFloat32 would round them): what a float64 reference
   * record needs. Readers of formats that hold float64 tensors provide it.
   */
  toFloat64?(): Float64Array;
  /** Integer values as int32; throws InputError if a value does not fit. C order. */
  toInt32(): Int32Array;
}

export interface Checkpoint {
  /** e.g. "safetensors", "safetensors-sharded", "torch-zip", "torch-legacy", "megatron", "onnx". */
  readonly format: string;
  /** The path the user gave. */
  readonly path: string;
  readonly tensors: ReadonlyMap<string, TensorRef>;
  /**
   * What the file says about itself besides tensors: safetensors `__metadata__`, Megatron `args`
   * (as a plain object) and `checkpoint_version`, torch non-tensor entries. Plain JSON-like data.
   */
  readonly meta: Readonly<Record<string, unknown>>;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** A TensorRef over values already in memory (merged shards, transformed tensors, tests). */
export function inMemoryTensor(
  name: string,
  shape: readonly number[],
  values: Float32Array | Int32Array,
  file: string,
  dtype: DType = values instanceof Float32Array ? 'F32' : 'I32',
): TensorRef {
  return {
    name,
    dtype,
    shape: [...shape],
    file,
    toFloat32: () => (values instanceof Float32Array ? values : Float32Array.from(values)),
    toInt32: () => (values instanceof Int32Array ? values : Int32Array.from(values, (v) => Math.trunc(v))),
  };
}

/**
 * One checkpoint made of several files of one format (an encoder graph and a decoder graph that
 * each hold their half of the weights). A name in more than one file must have one shape there;
 * the first file's tensor is kept (exporters repeat shared weights, such as T5's embedding).
 */
export function unionCheckpoint(parts: readonly Checkpoint[]): Checkpoint {
  if (parts.length === 1) return parts[0];
  const tensors = new Map<string, TensorRef>();
  for (const part of parts) {
    if (part.format !== parts[0].format) throw new InputError('files of one checkpoint must share a format', { file: part.path, expected: parts[0].format, actual: part.format });
    for (const [name, t] of part.tensors) {
      const seen = tensors.get(name);
      if (seen && shapeString(seen.shape) !== shapeString(t.shape)) throw new InputError('a tensor repeated in another file has another shape', { file: part.path, tensor: name, expected: `${shapeString(seen.shape)} (${seen.file})`, actual: shapeString(t.shape) });
      if (!seen) tensors.set(name, t);
    }
  }
  return { format: parts[0].format, path: parts.map((p) => p.path).join(','), tensors, meta: { parts: parts.map((p) => ({ path: p.path, ...p.meta })) } };
}
