/**
 * safetensors writer: the layout HF `save_file` produces (FORMATS.md §3) — header padded with
 * spaces to a multiple of 8 so every tensor starts 8-byte aligned in the file, `__metadata__`
 * {"format":"pt"} unless told otherwise (HF's loader rejects other formats than pt/tf/flax/mlx).
 * Tensors go in name order. Files are written atomically: temp file, fsync, rename.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../../errors.ts';
import { shapeString, type DType } from '../checkpoint.ts';
import { DTYPE_BITS, isDType } from './safetensors.ts';

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Float32Array for F32, Int32Array for I32, BigInt64Array for I64; raw little-endian bytes (Uint8Array) for any dtype. */
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

export const DEFAULT_METADATA: Readonly<Record<string, string>> = Object.freeze({ format: 'pt' });

/** Whole file in memory; for tests and small files. */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata: Record<string, string> = DEFAULT_METADATA): Buffer {
  const { header, chunks } = layout(tensors, metadata);
  return Buffer.concat([header, ...chunks]);
}

/** Streams the tensors to disk without concatenating them, so a 1 GB file needs no extra 1 GB. */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = DEFAULT_METADATA): void {
  const { header, chunks } = layout(tensors, metadata, path);
  writeAtomically(path, [header, ...chunks]);
}

const TYPED_DTYPE = new Map<Function, DType>([[Float32Array, 'F32'], [Int32Array, 'I32'], [BigInt64Array, 'I64']]);

function layout(tensors: readonly TensorToWrite[], metadata: Record<string, string>, file?: string): { header: Buffer; chunks: Uint8Array[] } {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new InputError('metadata values must be strings', { file, tensor: k, expected: 'string', actual: typeof v });
  }
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const json: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [i, t] of sorted.entries()) {
    if (t.name === '__metadata__' || (i > 0 && sorted[i - 1].name === t.name)) {
      throw new InputError('tensor name is reserved or repeated', { file, tensor: t.name, expected: 'unique names other than __metadata__', actual: t.name });
    }
    const bytes = checkedBytes(t, file);
    json[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  const text = JSON.stringify(json);
  const body = Buffer.from(text + ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8), 'utf8');
  const header = Buffer.alloc(8 + body.byteLength);
  header.writeBigUInt64LE(BigInt(body.byteLength), 0);
  body.copy(header, 8);
  return { header, chunks };
}

function checkedBytes(t: TensorToWrite, file?: string): Uint8Array {
  const fail = (message: string, expected: string, actual: string): never => {
    throw new InputError(message, { file, tensor: t.name, expected, actual });
  };
  if (!isDType(t.dtype)) fail('unknown dtype', Object.keys(DTYPE_BITS).join('|'), String(t.dtype));
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail('shape must hold non-negative integers', 'e.g. [64, 64]', shapeString(t.shape));
  const typed = TYPED_DTYPE.get(t.data.constructor);
  if (typed !== undefined && typed !== t.dtype) fail(`${t.data.constructor.name} cannot be written as ${t.dtype}`, typed, t.dtype);
  const bits = t.shape.reduce((p, d) => p * d, DTYPE_BITS[t.dtype]);
  if (bits % 8 !== 0 || bits / 8 !== t.data.byteLength) fail(`data size does not match ${t.dtype}${shapeString(t.shape)}`, `${bits / 8} bytes`, `${t.data.byteLength} bytes`);
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** A crash mid-write leaves the old file (or none), never a truncated one a later run would trust. */
export function writeAtomically(path: string, pieces: readonly Uint8Array[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    for (const piece of pieces) writeFully(fd, piece);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(tmp);
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
  syncDirectory(dirname(path));
}

function writeFully(fd: number, bytes: Uint8Array): void {
  // writeSync may write less than asked, and refuses lengths over 2 GiB.
  for (let at = 0; at < bytes.byteLength;) {
    at += writeSync(fd, bytes, at, Math.min(bytes.byteLength - at, 1 << 30));
  }
}

/** Makes the rename itself durable; not every platform lets a directory be fsynced, hence best effort. */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch {
    // Windows and some network filesystems refuse; the data itself is already synced.
  }
}
