/**
 * safetensors reader (FORMATS.md §3; huggingface/safetensors `safetensors/src/tensor.rs`).
 *
 * Opening reads and validates only the header; each tensor's bytes are read from the file when it
 * is asked for, and not kept. A 440 MB checkpoint then never sits in memory whole: the loader
 * converts and uploads one tensor at a time (Node cannot mmap, so "lazy" means a positioned read).
 * Validation is as strict as the Rust reader's, plus duplicate detection (JSON.parse keeps the last
 * duplicate silently) and rejection of unknown entry fields.
 *
 * Also exported for the other readers: `bytesTensor` (a TensorRef over little-endian bytes in
 * safetensors' dtype vocabulary), `DTYPE_BITS` and `findDuplicateKey`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { InputError } from '../../errors.ts';
import { shapeString, type Checkpoint, type DType, type TensorRef } from '../checkpoint.ts';

/** Bits per element; sub-byte types are why this is bits rather than bytes. */
export const DTYPE_BITS: Readonly<Record<DType, number>> = {
  BOOL: 8, U8: 8, I8: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32,
  C64: 64, F64: 64, I64: 64, U64: 64,
  F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8,
  F4: 4, F6_E2M3: 6, F6_E3M2: 6,
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BITS, value);
}

/** The Rust reader's cap; it keeps a lying length from making us decode gigabytes as JSON. */
export const MAX_HEADER_BYTES = 100_000_000;

/** readFileSync refuses files over 2 GiB - 1 (kIoMaxLength), so larger files are read in slices. */
const READ_SLICE = 1 << 30;

export function readSafetensors(path: string): Checkpoint {
  const { entries, meta, dataStart } = withFile(path, (fd, size) => {
    const lengthBytes = readAt(path, fd, 0, Math.min(8, size));
    const n = headerLength(path, lengthBytes, size);
    return parseHeader(path, readAt(path, fd, 8, n), n, size);
  });
  const tensors = new Map<string, TensorRef>();
  for (const e of entries) {
    const bytes = () => withFile(path, (fd) => readAt(path, fd, dataStart + e.begin, e.end - e.begin));
    tensors.set(e.name, bytesTensor(e.name, e.dtype, e.shape, path, bytes));
  }
  return { format: 'safetensors', path, tensors, meta };
}

/** `f` with the file open; errors name the file instead of leaking a bare ENOENT. */
function withFile<T>(path: string, f: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'no such file' : `cannot open (${code ?? 'error'})`, { file: path, cause });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new InputError('not a regular file', { file: path, expected: 'a file', actual: 'a directory or device' });
    return f(fd, stat.size);
  } catch (cause) {
    if (cause instanceof InputError) throw cause;
    throw new InputError('cannot read file', { file: path, cause });
  } finally {
    closeSync(fd);
  }
}

/** Exactly `length` bytes at `position`, in slices (one read is capped at 2 GiB - 1). */
function readAt(path: string, fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(length);
  let at = 0;
  while (at < length) {
    const n = readSync(fd, buf, at, Math.min(READ_SLICE, length - at), position + at);
    if (n === 0) throw new InputError('file shrank while being read', { file: path, expected: `${position + length} bytes`, actual: `${position + at} bytes` });
    at += n;
  }
  return buf;
}

/** One Buffer holding the file (the formats that need it whole: ONNX protobufs); errors name the file. */
export function readWholeFile(path: string): Buffer {
  return withFile(path, (fd, size) => {
    if (size > bufferConstants.MAX_LENGTH) {
      throw new InputError('file too large to hold in one buffer', {
        file: path, expected: `≤ ${bufferConstants.MAX_LENGTH} bytes`, actual: `${size} bytes`,
      });
    }
    return readAt(path, fd, 0, size);
  });
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

interface ParsedHeader {
  entries: Entry[];
  meta: Readonly<Record<string, string>>;
  /** Absolute offset of the data buffer: 8 + N. */
  dataStart: number;
}

/** Validates everything FORMATS.md §3 lists, in the order the Rust reader does. `header`: the n bytes after the length. */
function parseHeader(file: string, header: Uint8Array, n: number, fileSize: number): ParsedHeader {
  const text = headerText(file, header);
  const json = parseJsonObject(file, text);
  const dataStart = 8 + n;
  let meta: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') meta = checkMetadata(file, value);
    else entries.push(checkEntry(file, name, value));
  }
  checkTiling(file, entries, fileSize - dataStart);
  return { entries, meta: Object.freeze(meta), dataStart };
}

/** `buf`: the file's first bytes (up to 8); `fileSize`: its length. */
function headerLength(file: string, buf: Uint8Array, fileSize: number): number {
  if (buf.byteLength < 8) {
    throw new InputError('too short for a safetensors header length', { file, expected: '≥ 8 bytes', actual: `${buf.byteLength} bytes` });
  }
  const n = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new InputError('header length is implausibly large', { file, expected: `≤ ${MAX_HEADER_BYTES}`, actual: String(n) });
  }
  if (8n + n > BigInt(fileSize)) {
    throw new InputError('header runs past the end of the file (truncated?)', {
      file, expected: `8 + ${n} ≤ file size`, actual: `file size ${fileSize}`,
    });
  }
  return Number(n);
}

// fatal: corrupt bytes must fail, not become U+FFFD. ignoreBOM: keep a BOM so the `{` check sees it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function headerText(file: string, bytes: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (cause) {
    throw new InputError('header is not valid UTF-8', { file, cause });
  }
  if (!text.startsWith('{')) {
    throw new InputError('header does not start with "{"', { file, expected: '"{"', actual: JSON.stringify(text.slice(0, 16)) });
  }
  return text;
}

function parseJsonObject(file: string, text: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`header is not valid JSON: ${(cause as Error).message}`, { file, cause });
  }
  // Starting with "{" and parsing means it is an object; the scan only runs on valid JSON.
  const dup = findDuplicateKey(text);
  if (dup) {
    const where = dup.path.length ? ` in ${dup.path.join('.')}` : '';
    throw new InputError(`header names a key twice${where}`, { file, tensor: dup.path[0] ?? dup.key, expected: 'unique names', actual: `${JSON.stringify(dup.key)} twice` });
  }
  return json as Record<string, unknown>;
}

const ENTRY_FIELDS = ['data_offsets', 'dtype', 'shape'];

function checkEntry(file: string, name: string, value: unknown): Entry {
  const fail = (message: string, expected: string, actual: string): never => {
    throw new InputError(message, { file, tensor: name, expected, actual });
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('header entry is not an object', '{dtype, shape, data_offsets}', JSON.stringify(value));
  }
  const info = value as Record<string, unknown>;
  const fields = Object.keys(info).sort();
  if (fields.join() !== ENTRY_FIELDS.join()) fail('header entry has wrong fields', ENTRY_FIELDS.join(', '), fields.join(', '));
  const { dtype, shape, data_offsets: offsets } = info;
  if (!isDType(dtype)) fail('unknown dtype', Object.keys(DTYPE_BITS).join('|'), JSON.stringify(dtype));
  const dt = dtype as DType;
  if (!Array.isArray(shape) || !shape.every(isCount)) fail('shape must be a list of non-negative integers', 'e.g. [64, 64]', JSON.stringify(shape));
  const dims = shape as number[];
  const bits = checkedProduct([...dims, DTYPE_BITS[dt]]);
  if (bits === undefined) fail('shape is too large (element count overflows)', `numel·bits ≤ ${Number.MAX_SAFE_INTEGER}`, shapeString(dims));
  if (bits! % 8 !== 0) fail(`${dt} tensor does not fill whole bytes`, 'numel·bits divisible by 8', `${bits} bits`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail('data_offsets must be [begin, end] with non-negative integers', '[begin, end]', JSON.stringify(offsets));
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail('data_offsets end before they begin', `end ≥ ${begin}`, `end ${end}`);
  const bytes = bits! / 8;
  if (end - begin !== bytes) fail(`byte count does not match ${dt}${shapeString(dims)}`, `${bytes} bytes`, `${end - begin} bytes [${begin}, ${end})`);
  return { name, dtype: dt, shape: dims, begin, end };
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** Product that reports overflow past 2^53 instead of silently losing precision. */
function checkedProduct(values: readonly number[]): number | undefined {
  let p = 1;
  for (const v of values) {
    p *= v;
    if (!Number.isSafeInteger(p)) return undefined;
  }
  return p;
}

function checkMetadata(file: string, value: unknown): Record<string, string> {
  const ok = typeof value === 'object' && value !== null && !Array.isArray(value)
    && Object.values(value).every((v) => typeof v === 'string');
  if (!ok) {
    throw new InputError('__metadata__ must map strings to strings', { file, tensor: '__metadata__', expected: '{string: string}', actual: JSON.stringify(value).slice(0, 80) });
  }
  return value as Record<string, string>;
}

/** Sorted by begin, the tensors must cover [0, dataLength) exactly once (Rust `InvalidOffset`). */
function checkTiling(file: string, entries: readonly Entry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) {
      const what = e.begin > cursor ? 'leaves a gap before it' : 'overlaps the tensor before it';
      throw new InputError(`tensor ${what}`, { file, tensor: e.name, expected: `begin ${cursor}`, actual: `begin ${e.begin}` });
    }
    if (e.end > dataLength) {
      throw new InputError('tensor runs past the end of the file (truncated?)', {
        file, tensor: e.name, expected: `end ≤ ${dataLength} (data buffer size)`, actual: `end ${e.end}`,
      });
    }
    cursor = e.end;
  }
  if (cursor !== dataLength) {
    throw new InputError('data buffer has bytes no tensor claims', { file, expected: `${cursor} bytes after the header`, actual: `${dataLength} bytes` });
  }
}

/**
 * First object key that occurs twice in the same object, with the keys leading to that object.
 * Call only on text JSON.parse accepted: the scan trusts the structure. Keys are compared decoded,
 * so "a" and "\u0061" are the same name, as they are to JSON.parse.
 */
export function findDuplicateKey(text: string): { key: string; path: string[] } | undefined {
  type Frame = { keys: Set<string> | null; expectKey: boolean; key: string };
  const stack: Frame[] = [];
  let lastKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(key)) return { key, path: stack.slice(1).map((f) => f.key) };
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push({ keys: c === 0x7b ? new Set() : null, expectKey: c === 0x7b, key: lastKey });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
  return undefined;
}

// ---- Decoding. Data are little-endian; Node runs little-endian on every platform it ships for. ----

type ViewCtor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number };

/** A typed view when the bytes are aligned for it, else a view over an aligned copy. */
function alignedView<T>(ctor: ViewCtor<T>, bytes: Uint8Array): T {
  const length = bytes.byteLength / ctor.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0) return new ctor(bytes.buffer, bytes.byteOffset, length);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new ctor(copy.buffer, 0, length);
}

let halfTable: Float32Array | undefined;

/** All 65536 halves decoded once: a table lookup beats bit twiddling per element. */
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24; // zero and subnormals: frac · 2^-14 · 2^-10
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return (halfTable = t);
}

export function decodeFloat32(dtype: DType, bytes: Uint8Array): Float32Array | undefined {
  switch (dtype) {
    case 'F32': return alignedView(Float32Array, bytes);
    case 'F64': return new Float32Array(alignedView(Float64Array, bytes));
    case 'F16': {
      const src = alignedView(Uint16Array, bytes);
      const table = halfToFloat();
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32, so widening is exact: bits << 16.
      const src = alignedView(Uint16Array, bytes);
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return out;
    }
    case 'I8': return new Float32Array(alignedView(Int8Array, bytes));
    case 'U8': return new Float32Array(bytes);
    case 'BOOL': return Float32Array.from(bytes, (b) => (b ? 1 : 0));
    case 'I16': return new Float32Array(alignedView(Int16Array, bytes));
    case 'U16': return new Float32Array(alignedView(Uint16Array, bytes));
    case 'I32': return new Float32Array(alignedView(Int32Array, bytes));
    case 'U32': return new Float32Array(alignedView(Uint32Array, bytes));
    case 'I64':
    case 'U64': {
      // hi·2^32 + lo is one correctly rounded double add; then float32 rounding, as torch .float() does for |v| < 2^53.
      const words = alignedView(Uint32Array, bytes);
      const out = new Float32Array(words.length / 2);
      const signed = dtype === 'I64';
      for (let i = 0; i < out.length; i++) {
        const hi = signed ? words[2 * i + 1] | 0 : words[2 * i + 1];
        out[i] = hi * 4294967296 + words[2 * i];
      }
      return out;
    }
    default: return undefined;
  }
}

/** Int32 values, or the index of the first value that does not fit (`undefined` dtype: not an integer type). */
export function decodeInt32(dtype: DType, bytes: Uint8Array): Int32Array | { badIndex: number; value: string } | undefined {
  switch (dtype) {
    case 'I32': return alignedView(Int32Array, bytes);
    case 'I16': return new Int32Array(alignedView(Int16Array, bytes));
    case 'U16': return new Int32Array(alignedView(Uint16Array, bytes));
    case 'I8': return new Int32Array(alignedView(Int8Array, bytes));
    case 'U8': return new Int32Array(bytes);
    case 'BOOL': return Int32Array.from(bytes, (b) => (b ? 1 : 0));
    case 'U32': {
      const src = alignedView(Uint32Array, bytes);
      const bad = src.findIndex((v) => v > 0x7fffffff);
      return bad >= 0 ? { badIndex: bad, value: String(src[bad]) } : new Int32Array(src.buffer, src.byteOffset, src.length);
    }
    case 'I64':
    case 'U64': {
      const words = alignedView(Int32Array, bytes);
      const out = new Int32Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = words[2 * i];
        const hi = words[2 * i + 1];
        // Fits in int32 exactly when the high word is the sign extension of the low word.
        const fits = dtype === 'I64' ? hi === lo >> 31 : hi === 0 && lo >= 0;
        if (!fits) {
          const v = dtype === 'I64' ? (BigInt(hi) << 32n) | BigInt(lo >>> 0) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
          return { badIndex: i, value: String(v) };
        }
        out[i] = lo;
      }
      return out;
    }
    default: return undefined;
  }
}

/**
 * A TensorRef over little-endian bytes laid out as safetensors stores them. The byte count must
 * already match dtype and shape. An aligned F32/I32 result is a view into `bytes` (shared with the
 * file buffer): treat it as read-only.
 */
export function bytesTensor(name: string, dtype: DType, shape: readonly number[], file: string, source: Uint8Array | (() => Uint8Array)): TensorRef {
  // A function source is read on each use and not kept, so a tensor costs memory only while in use.
  const load = typeof source === 'function' ? source : () => source;
  return {
    name,
    dtype,
    shape: Object.freeze([...shape]),
    file,
    toFloat32() {
      const out = decodeFloat32(dtype, load());
      if (!out) throw new InputError(`cannot widen ${dtype} to float32`, { file, tensor: name, expected: 'F32|F16|BF16|F64 or an integer dtype', actual: dtype });
      return out;
    },
    toFloat64() {
      if (dtype === 'F64') return alignedView(Float64Array, load());
      return Float64Array.from(this.toFloat32());
    },
    toInt32() {
      const out = decodeInt32(dtype, load());
      if (!out) throw new InputError(`${dtype} tensor cannot be read as integers`, { file, tensor: name, expected: 'an integer or BOOL dtype', actual: dtype });
      if (!(out instanceof Int32Array)) {
        throw new InputError(`value at flat index ${out.badIndex} does not fit in int32`, { file, tensor: name, expected: '-2147483648..2147483647', actual: out.value });
      }
      return out;
    },
  };
}
