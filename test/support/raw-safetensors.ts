/**
 * A safetensors file read the plainest way (u64 LE header length, JSON header, raw bytes), kept
 * apart from src/ so a comparison against a reference file does not run our reader on both sides.
 * Bit-exact means byte-equal data, which also tells -0 from 0 and keeps NaN payloads.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

export function readRawSafetensors(path: string): Map<string, RawTensor> {
  const file = readFileSync(path);
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, RawTensor>();
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, { dtype: h.dtype, shape: h.shape, bytes: file.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1]) });
  }
  return out;
}

/** Float32 values as the little-endian bytes safetensors stores. */
export function f32Bytes(data: Float32Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * `actual` holds exactly the reference's tensors (same names, shapes, F32 bytes), apart from the
 * reference tensors named in `exclude` (each must exist there, so a stale exclusion shows up).
 */
export function expectSameTensors(actual: ReadonlyMap<string, { shape: readonly number[]; bytes: Buffer }>, referencePath: string, exclude: readonly string[] = []): void {
  const reference = readRawSafetensors(referencePath);
  for (const name of exclude) expect(reference.has(name), `${referencePath} has ${name}`).toBe(true);
  const expectedNames = [...reference.keys()].filter((n) => !exclude.includes(n)).sort();
  expect([...actual.keys()].sort()).toEqual(expectedNames);
  for (const name of expectedNames) {
    const ref = reference.get(name) as RawTensor;
    const got = actual.get(name) as { shape: readonly number[]; bytes: Buffer };
    expect(ref.dtype, name).toBe('F32');
    expect([...got.shape], name).toEqual(ref.shape);
    expect(got.bytes.equals(ref.bytes), `${name}: values differ from ${referencePath}`).toBe(true);
  }
}
