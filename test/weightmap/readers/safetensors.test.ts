/**
 * safetensors reader and writer. Oracles: the tables in baselines/<model>/README.md (written by
 * the Python side that produced the files), facts stated there (HF init: LayerNorm weight 1, bias
 * 0; position_ids = arange), IEEE bit patterns worked out by hand, and a header check written here
 * independently of the reader.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { readSafetensors } from '../../../src/weightmap/readers/safetensors.ts';
import { encodeSafetensors, writeAtomically, writeSafetensors, type TensorToWrite } from '../../../src/weightmap/readers/safetensors-writer.ts';

const BASELINES = join(import.meta.dirname, '../../../baselines');
const tmp = mkdtempSync(join(tmpdir(), 'parity-st-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Row { dtype: string; shape: number[] }

/** Every `### \`file.safetensors\`` section of every baseline README that has a tensor table. */
function readmeTables(): Array<{ file: string; rows: Map<string, Row> }> {
  const out: Array<{ file: string; rows: Map<string, Row> }> = [];
  for (const model of readdirSync(BASELINES, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    const readme = readFileSync(join(BASELINES, model.name, 'README.md'), 'utf8');
    const seen = new Set<string>();
    for (const section of readme.split(/^(?=##)/m)) {
      const head = /^### `([^`]+\.safetensors)`/.exec(section);
      if (!head) continue;
      const rows = new Map<string, Row>();
      for (const m of section.matchAll(/^\| `([^`]+)` \| (\w+) \| \[([^\]]*)\] \|$/gm)) {
        rows.set(m[1], { dtype: m[2], shape: m[3] === '' ? [] : m[3].split(',').map(Number) });
      }
      if (rows.size && !seen.has(head[1])) {
        seen.add(head[1]);
        out.push({ file: join(BASELINES, model.name, head[1]), rows });
      }
    }
  }
  return out;
}

const tables = readmeTables();

/** A safetensors file assembled by hand: u64 LE length, header text padded with spaces until the data start ≡ `at` (mod 8), data. */
function handMade(header: Record<string, unknown>, data: Uint8Array, at = 0): Buffer {
  let text = JSON.stringify(header);
  while ((8 + Buffer.byteLength(text)) % 8 !== at) text += ' ';
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  return Buffer.concat([prefix, Buffer.from(text), data]);
}

function writeTemp(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

function u16le(...values: number[]): Uint8Array {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return b;
}

describe('readSafetensors on the baseline files', () => {
  it('finds README tables for the baseline files', () => {
    // 4 HF folders × 6-7 files + the Megatron folders' HF-layout files.
    expect(tables.length).toBeGreaterThanOrEqual(30);
  });

  it.each(tables.map((t) => [t.file.slice(BASELINES.length + 1), t] as const))('%s matches its README table', (_, { file, rows }) => {
    const ckpt = readSafetensors(file);
    expect(ckpt.format).toBe('safetensors');
    expect(ckpt.path).toBe(file);
    expect([...ckpt.tensors.keys()].sort()).toEqual([...rows.keys()].sort());
    for (const [name, row] of rows) {
      const t = ckpt.tensors.get(name)!;
      expect({ name, dtype: t.dtype, shape: [...t.shape] }).toEqual({ name, ...row });
      expect(t.file).toBe(file);
    }
  });

  it('reads bert init values the README states: LayerNorm 1/0, position_ids = arange, std 0.02 embeddings', () => {
    const ckpt = readSafetensors(join(BASELINES, 'bert/model.safetensors'));
    expect(ckpt.meta).toEqual({ format: 'pt' });
    const lnWeights = [...ckpt.tensors.values()].filter((t) => t.name.endsWith('LayerNorm.weight'));
    const lnBiases = [...ckpt.tensors.values()].filter((t) => t.name.endsWith('LayerNorm.bias'));
    expect(lnWeights).toHaveLength(6);
    for (const t of lnWeights) expect([...t.toFloat32()].every((v) => v === 1)).toBe(true);
    for (const t of lnBiases) expect([...t.toFloat32()].every((v) => v === 0)).toBe(true);

    const pos = ckpt.tensors.get('bert.embeddings.position_ids')!;
    expect([...pos.toInt32()]).toEqual(Array.from({ length: 128 }, (_, i) => i));
    expect([...pos.toFloat32()]).toEqual(Array.from({ length: 128 }, (_, i) => i));

    // config.json initializer_range 0.02: HF draws embeddings from N(0, 0.02). A misdecoded
    // buffer (wrong offset, wrong endianness) gives a wildly different spread.
    const emb = ckpt.tensors.get('bert.embeddings.word_embeddings.weight')!.toFloat32();
    expect(emb).toHaveLength(64_000);
    const mean = emb.reduce((s, v) => s + v, 0) / emb.length;
    const std = Math.sqrt(emb.reduce((s, v) => s + (v - mean) ** 2, 0) / emb.length);
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(std).toBeGreaterThan(0.0195);
    expect(std).toBeLessThan(0.0205);
  });

  it('reads integer batches within the ranges the README gives (I32, vocab 1000, labels -100)', () => {
    const ckpt = readSafetensors(join(BASELINES, 'bert/batches.safetensors'));
    const ids = ckpt.tensors.get('input_ids')!.toInt32();
    const mask = ckpt.tensors.get('attention_mask')!.toInt32();
    const labels = ckpt.tensors.get('labels')!.toInt32();
    expect(ids).toHaveLength(1000 * 8 * 32);
    expect(ids.every((v) => v >= 0 && v < 1000)).toBe(true);
    expect(mask.every((v) => v === 0 || v === 1)).toBe(true);
    expect(labels.every((v) => v === -100 || (v >= 4 && v < 1000))).toBe(true);
    // Every row starts with [CLS] = 1.
    for (let r = 0; r < 8000; r++) expect(ids[r * 32]).toBe(1);
  });

  it('reads each tensor from the file when asked, at the byte offsets the header gives, and keeps nothing', () => {
    const file = writeTemp('lazy.safetensors', readFileSync(join(BASELINES, 'gpt2/model.safetensors')));
    const raw = readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
    const ckpt = readSafetensors(file);
    const [begin, end] = header['transformer.wpe.weight'].data_offsets;
    const before = ckpt.tensors.get('transformer.wpe.weight')!.toFloat32();
    expect(Buffer.from(before.buffer, before.byteOffset, before.byteLength).equals(raw.subarray(8 + n + begin, 8 + n + end))).toBe(true);
    // Rewrite the tensor's bytes on disk after opening: a reader that held the file would not see it.
    const edited = Buffer.from(raw);
    edited.writeFloatLE(12.5, 8 + n + begin);
    writeFileSync(file, edited);
    const after = ckpt.tensors.get('transformer.wpe.weight')!.toFloat32();
    expect(after[0]).toBe(12.5);
    expect(after.subarray(1)).toEqual(before.subarray(1));
    expect(after.buffer).not.toBe(before.buffer);
  });

  it('names the file when it shrank after opening', () => {
    const file = writeTemp('shrunk.safetensors', readFileSync(join(BASELINES, 'gpt2/model.safetensors')));
    const ckpt = readSafetensors(file);
    writeFileSync(file, readFileSync(file).subarray(0, 1000));
    expect(() => ckpt.tensors.get('transformer.ln_f.bias')!.toFloat32()).toThrow(/shrank while being read[\s\S]*shrunk\.safetensors|shrunk\.safetensors[\s\S]*shrank/);
  });
});

describe('readSafetensors decoding', () => {
  // Half-precision bit patterns and their values (IEEE 754 binary16).
  const halves: Array<[number, number]> = [
    [0x0000, 0], [0x8000, -0], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
    [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x8001, -(2 ** -24)],
    [0x7c00, Infinity], [0xfc00, -Infinity], [0x7e00, NaN], [0x7c01, NaN],
  ];
  // bfloat16 is the top 16 bits of float32.
  const bfloats: Array<[number, number]> = [
    [0x3f80, 1], [0xc040, -3], [0x3eaa, 0.33203125], [0x7f80, Infinity], [0xff80, -Infinity],
    [0x0001, 2 ** -133], [0x8000, -0], [0x7fc0, NaN],
  ];

  function single(dtype: string, shape: number[], data: Uint8Array, at = 0) {
    const path = writeTemp(`${dtype}-${at}.safetensors`, handMade({ t: { dtype, shape, data_offsets: [0, data.byteLength] } }, data, at));
    return readSafetensors(path).tensors.get('t')!;
  }

  it('widens F16 including subnormals, infinities and NaN', () => {
    const got = single('F16', [halves.length], u16le(...halves.map(([h]) => h))).toFloat32();
    expect([...got]).toEqual(halves.map(([, v]) => v));
    expect(Object.is(got[1], -0)).toBe(true);
  });

  it('widens BF16 exactly', () => {
    const got = single('BF16', [bfloats.length], u16le(...bfloats.map(([h]) => h))).toFloat32();
    expect([...got]).toEqual(bfloats.map(([, v]) => v));
  });

  it('narrows F64 to the nearest float32', () => {
    const values = [1.5, -2.25, 0.1, 1e300, -1e-50];
    const got = single('F64', [5], new Uint8Array(new Float64Array(values).buffer)).toFloat32();
    expect([...got]).toEqual([1.5, -2.25, Math.fround(0.1), Infinity, -0]);
  });

  it.each([
    ['I8', new Int8Array([-128, 127, -1]), [-128, 127, -1]],
    ['U8', new Uint8Array([0, 255, 7]), [0, 255, 7]],
    ['BOOL', new Uint8Array([0, 1, 1]), [0, 1, 1]],
    ['I16', new Int16Array([-32768, 32767, -2]), [-32768, 32767, -2]],
    ['U16', new Uint16Array([0, 65535, 3]), [0, 65535, 3]],
    ['I32', new Int32Array([-(2 ** 31), 2 ** 31 - 1, 5]), [-(2 ** 31), 2 ** 31 - 1, 5]],
    ['I64', new BigInt64Array([-1n, -(2n ** 31n), 2n ** 31n - 1n]), [-1, -(2 ** 31), 2 ** 31 - 1]],
    ['U64', new BigUint64Array([0n, 2n ** 31n - 1n, 9n]), [0, 2 ** 31 - 1, 9]],
    ['U32', new Uint32Array([0, 2 ** 31 - 1, 9]), [0, 2 ** 31 - 1, 9]],
  ] as const)('reads %s as int32 and float32', (dtype, data, expected) => {
    const t = single(dtype, [3], new Uint8Array(data.buffer));
    expect([...t.toInt32()]).toEqual(expected);
    expect([...t.toFloat32()]).toEqual(expected.map((v) => Math.fround(v)));
  });

  it('widens 64-bit and unsigned 32-bit integers beyond int32 to the nearest float32', () => {
    expect([...single('I64', [2], new Uint8Array(new BigInt64Array([2n ** 40n + 1n, -(2n ** 62n)]).buffer)).toFloat32()])
      .toEqual([2 ** 40, -(2 ** 62)]);
    expect([...single('U64', [1], new Uint8Array(new BigUint64Array([2n ** 64n - 1n]).buffer)).toFloat32()]).toEqual([2 ** 64]);
    expect([...single('U32', [1], new Uint8Array(new Uint32Array([4294967295]).buffer)).toFloat32()]).toEqual([4294967296]);
  });

  it.each([
    ['I64', new Uint8Array(new BigInt64Array([0n, 2n ** 31n]).buffer), '2147483648'],
    ['I64', new Uint8Array(new BigInt64Array([-(2n ** 31n) - 1n, 0n]).buffer), '-2147483649'],
    ['U64', new Uint8Array(new BigUint64Array([2n ** 63n, 0n]).buffer), '9223372036854775808'],
    ['U32', new Uint8Array(new Uint32Array([1, 2 ** 31]).buffer), '2147483648'],
  ] as const)('toInt32 on %s refuses a value outside int32 (%#)', (dtype, bytes, value) => {
    const t = single(dtype, [2], bytes);
    expect(() => t.toInt32()).toThrow(InputError);
    expect(() => t.toInt32()).toThrow(/tensor "t"/);
    expect(() => t.toInt32()).toThrow(value);
  });

  it.each(['F32', 'F16', 'BF16', 'F64'])('toInt32 refuses float dtype %s', (dtype) => {
    const t = single(dtype, [2], new Uint8Array(dtype === 'F64' ? 16 : dtype === 'F32' ? 8 : 4));
    expect(() => t.toInt32()).toThrow(InputError);
    expect(() => t.toInt32()).toThrow(dtype);
  });

  it('opens exotic dtypes but refuses to widen what it cannot decode', () => {
    const f8 = single('F8_E4M3', [4], new Uint8Array(4));
    expect(f8.shape).toEqual([4]);
    expect(() => f8.toFloat32()).toThrow(InputError);
    // F4: two elements share a byte, so shape [2] is one byte.
    expect(single('F4', [2], new Uint8Array(1)).dtype).toBe('F4');
  });

  it('copies an F32 tensor whose offset is not 4-byte aligned, with the right values', () => {
    const values = new Float32Array([1.25, -3.5, 7]);
    const t = single('F32', [3], new Uint8Array(values.buffer), 1); // data starts at an odd offset
    // A view at an odd offset would throw RangeError; the reader must copy instead.
    expect([...t.toFloat32()]).toEqual([...values]);
  });

  it('handles empty and rank-0 tensors and a file without __metadata__', () => {
    const data = new Uint8Array(new Float32Array([42]).buffer);
    const path = writeTemp('edge.safetensors', handMade({
      empty: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] },
      scalar: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
    }, data));
    const ckpt = readSafetensors(path);
    expect(ckpt.meta).toEqual({});
    expect(ckpt.tensors.get('empty')!.toFloat32()).toHaveLength(0);
    expect(ckpt.tensors.get('empty')!.shape).toEqual([0, 4]);
    expect([...ckpt.tensors.get('scalar')!.toFloat32()]).toEqual([42]);
    expect(ckpt.tensors.get('scalar')!.shape).toEqual([]);
  });

  it('names the file when it does not exist', () => {
    const missing = join(tmp, 'nope.safetensors');
    expect(() => readSafetensors(missing)).toThrow(InputError);
    expect(() => readSafetensors(missing)).toThrow(`${missing}: no such file`);
  });
});

/** The writer's header, checked the way any safetensors reader would, without our reader. */
function checkWrittenHeader(bytes: Buffer): { header: Record<string, any>; dataStart: number } {
  const n = Number(bytes.readBigUInt64LE(0));
  expect(n % 8).toBe(0);
  const text = bytes.subarray(8, 8 + n).toString('utf8');
  const json = text.trimEnd();
  expect(text.slice(json.length)).toMatch(/^ *$/);
  expect(text.length - json.length).toBeLessThan(8);
  const header = JSON.parse(json) as Record<string, any>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  expect(names).toEqual([...names].sort());
  let cursor = 0;
  for (const name of names) {
    expect(header[name].data_offsets[0]).toBe(cursor);
    cursor = header[name].data_offsets[1];
  }
  expect(8 + n + cursor).toBe(bytes.byteLength);
  return { header, dataStart: 8 + n };
}

describe('writeSafetensors', () => {
  const half = u16le(0x3c00, 0xc000, 0x7bff);
  const tensors: TensorToWrite[] = [
    { name: 'w', dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0.1, -0, 1e-40]) },
    { name: 'ids', dtype: 'I64', shape: [3], data: new BigInt64Array([-1n, 7n, 2n ** 31n - 1n]) },
    { name: 'a.mask', dtype: 'I32', shape: [2], data: new Int32Array([0, -7]) },
    { name: 'half', dtype: 'F16', shape: [3], data: half },
    { name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([3]) },
    { name: 'empty', dtype: 'F32', shape: [0], data: new Float32Array(0) },
  ];

  it('writes a header any reader accepts: padded to 8, name order, contiguous, {"format":"pt"}', () => {
    const path = join(tmp, 'written.safetensors');
    writeSafetensors(path, tensors);
    const bytes = readFileSync(path);
    const { header, dataStart } = checkWrittenHeader(bytes);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header.w).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: expect.any(Array) });
    const [b, e] = header.ids.data_offsets;
    expect([...new BigInt64Array(bytes.buffer.slice(bytes.byteOffset + dataStart + b, bytes.byteOffset + dataStart + e))]).toEqual([-1n, 7n, 2n ** 31n - 1n]);
    expect(bytes.equals(encodeSafetensors(tensors))).toBe(true);
  });

  it('round-trips values and custom metadata through readSafetensors', () => {
    const path = join(tmp, 'roundtrip.safetensors');
    writeSafetensors(path, tensors, { format: 'pt', note: 'x' });
    const ckpt = readSafetensors(path);
    expect(ckpt.meta).toEqual({ format: 'pt', note: 'x' });
    expect([...ckpt.tensors.get('w')!.toFloat32()]).toEqual([1, -2, 3.5, Math.fround(0.1), -0, Math.fround(1e-40)]);
    expect([...ckpt.tensors.get('ids')!.toInt32()]).toEqual([-1, 7, 2 ** 31 - 1]);
    expect([...ckpt.tensors.get('a.mask')!.toInt32()]).toEqual([0, -7]);
    expect([...ckpt.tensors.get('half')!.toFloat32()]).toEqual([1, -2, 65504]);
    expect(ckpt.tensors.get('scalar')!.shape).toEqual([]);
    expect(ckpt.tensors.get('empty')!.toFloat32()).toHaveLength(0);
  });

  it('rewrites a real checkpoint with identical tensors', () => {
    const src = readSafetensors(join(BASELINES, 't5/model.safetensors'));
    const path = join(tmp, 't5-copy.safetensors');
    writeSafetensors(path, [...src.tensors.values()].map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, data: t.toFloat32() })));
    checkWrittenHeader(readFileSync(path));
    const copy = readSafetensors(path);
    expect([...copy.tensors.keys()].sort()).toEqual([...src.tensors.keys()].sort());
    for (const t of src.tensors.values()) {
      const a = new Uint32Array(t.toFloat32().slice().buffer);
      const b = new Uint32Array(copy.tensors.get(t.name)!.toFloat32().slice().buffer);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), t.name).toBe(true);
    }
  });

  it('replaces an existing file atomically and leaves no temp files', () => {
    const dir = mkdtempSync(join(tmp, 'atomic-'));
    const path = join(dir, 'm.safetensors');
    writeFileSync(path, 'old');
    writeSafetensors(path, tensors);
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
    expect(readSafetensors(path).tensors.size).toBe(tensors.length);
  });

  it.each([
    ['data shorter than the shape', { name: 'x', dtype: 'F32', shape: [4], data: new Float32Array(3) }],
    ['typed array of another dtype', { name: 'x', dtype: 'F16', shape: [2], data: new Float32Array(1) }],
    ['unknown dtype', { name: 'x', dtype: 'F128' as 'F32', shape: [1], data: new Uint8Array(16) }],
    ['negative dim', { name: 'x', dtype: 'U8', shape: [-1], data: new Uint8Array(0) }],
    ['reserved name', { name: '__metadata__', dtype: 'U8', shape: [1], data: new Uint8Array(1) }],
  ] as const)('refuses %s and leaves the old file untouched', (_, bad) => {
    const dir = mkdtempSync(join(tmp, 'bad-'));
    const path = join(dir, 'm.safetensors');
    writeFileSync(path, 'old');
    expect(() => writeSafetensors(path, [tensors[0], bad as TensorToWrite])).toThrow(InputError);
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
  });

  it('removes its temp file and keeps the old file when writing fails midway', () => {
    const dir = mkdtempSync(join(tmp, 'midway-'));
    const path = join(dir, 'm.safetensors');
    writeFileSync(path, 'old');
    const failing = { get byteLength(): number { throw new Error('disk on fire'); } } as unknown as Uint8Array;
    expect(() => writeAtomically(path, [Buffer.from('new'), failing])).toThrow('disk on fire');
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['m.safetensors']);
  });

  it('refuses a repeated tensor name', () => {
    expect(() => encodeSafetensors([tensors[0], tensors[0]])).toThrow(/reserved or repeated/);
  });
});
