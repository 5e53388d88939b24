/**
 * `torch.save` files (`pytorch_model.bin`, Megatron's `model_optim_rng.pt`) as a Checkpoint.
 *
 * Both formats of current and past torch are read: the zip (torch ≥ 1.6: `<top>/data.pkl` plus
 * one `<top>/data/<key>` record per storage) and the legacy stream (torch < 1.6, or
 * `_use_new_zipfile_serialization=False`: five pickles, then the storages). The very old tar
 * format is refused with a clear message. Pickles go through our own VM (pickle.ts), which
 * never runs code.
 *
 * Tensors are keyed by their dotted path through nested dicts and lists (`model.language_model.
 * encoder.layers.0.input_layernorm.weight`); everything else lands in `meta` as JSON-able data.
 * Every tensor is checked against its storage's bytes when the file is opened, so a lying
 * size/stride/offset fails at open, not later inside a model.
 */
import { numel, type Checkpoint, type DType, type TensorRef } from '../checkpoint.ts';
import { InputError } from '../../errors.ts';
import { own, PyGlobal, PyObject, PySet, PyStorage, PyTensor, unpickle, type PyValue } from './pickle.ts';
import { openByteSource, readEntry, readZip, type ByteSource, type ZipArchive, type ZipEntry } from './zip.ts';

export interface TorchReadOptions {
  /** Files up to this many bytes are held in memory (zero-copy float32 views); bigger ones are read per storage. */
  wholeFileLimit?: number;
}

export function readTorchCheckpoint(path: string, options: TorchReadOptions = {}): Checkpoint {
  const source = openByteSource(path, options.wholeFileLimit);
  const head = source.read(0, Math.min(source.size, 512));
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 0x03 || head[2] === 0x05)) {
    return readZipFormat(source);
  }
  if (head.length >= 2 && head[0] === 0x80) return readLegacyFormat(source);
  if (head.length >= 262 && String.fromCharCode(...head.subarray(257, 262)) === 'ustar') {
    throw new InputError('tar-format torch checkpoint (very old torch, before the pickle stream format) is not supported; re-save it with a current torch', {
      file: path,
    });
  }
  throw new InputError('not a torch checkpoint', {
    file: path,
    expected: 'a zip (PK\\x03\\x04) or a pickle stream (\\x80\\x02)',
    actual: head.length ? Buffer.from(head.subarray(0, 4)).toString('hex') : 'an empty file',
  });
}

// ---------------------------------------------------------------------------------------------
// Formats: where each storage's bytes are

/** Bytes of a whole storage (a root storage; legacy views add their offset on top). */
type StorageBytes = (key: string) => Uint8Array;

function readZipFormat(source: ByteSource): Checkpoint {
  const file = source.path;
  const zip = readZip(source);
  const pklName = `${zip.top}/data.pkl`;
  const pkl = zip.entries.get(pklName);
  if (!pkl) throw new InputError(`zip has no ${pklName}`, { file, expected: `${zip.top}/data.pkl`, actual: [...zip.entries.keys()].slice(0, 5).join(', ') });
  const littleEndian = byteOrder(zip);
  const { value, storages } = unpickle(readEntry(zip, pkl), { file, where: pklName, exact: true });

  const entries = new Map<string, ZipEntry>();
  for (const s of storages.values()) {
    const name = `${zip.top}/data/${s.key}`;
    const entry = zip.entries.get(name);
    if (!entry) throw new InputError(`storage record ${name} is missing`, { file });
    const bytes = s.numel * itemSize(s.dtype, file);
    if (entry.size !== bytes) {
      throw new InputError(`storage record ${name} has the wrong size for ${s.numel} × ${s.className}`, {
        file,
        expected: `${bytes} bytes`,
        actual: `${entry.size} bytes`,
      });
    }
    entries.set(s.key, entry);
  }
  // In-memory sources hand out views of one buffer, so the CRC is checked once per storage;
  // file-backed sources read afresh each time and check each time.
  const verified = new Map<string, Uint8Array>();
  const bytesOf: StorageBytes = (key) => {
    const hit = verified.get(key);
    if (hit) return hit;
    const bytes = readEntry(zip, entries.get(key)!);
    if (source.inMemory) verified.set(key, bytes);
    return bytes;
  };
  return assemble('torch-zip', file, value, bytesOf, littleEndian);
}

function byteOrder(zip: ZipArchive): boolean {
  const rec = zip.entries.get(`${zip.top}/byteorder`);
  if (!rec) return true; // torch < 2.1 writes no record and only ever wrote little-endian hosts' bytes
  const text = new TextDecoder().decode(readEntry(zip, rec)).trim();
  if (text === 'little' || text === 'big') return text === 'little';
  throw new InputError('unknown byteorder record', { file: zip.source.path, expected: 'little or big', actual: JSON.stringify(text) });
}

/** 0x1950a86a20f9469cfc6c: the first pickle of every legacy file (`torch/serialization.py: MAGIC_NUMBER`). */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function readLegacyFormat(source: ByteSource): Checkpoint {
  const file = source.path;
  if (!source.inMemory) throw new InputError('legacy-format torch files over 2 GiB are not supported; re-save as zip', { file });
  const all = source.read(0, source.size);
  const next = (start: number, what: string) => unpickle(all, { file, where: `legacy ${what} pickle`, start });
  const magic = next(0, 'magic');
  if (magic.value !== LEGACY_MAGIC) {
    throw new InputError('pickle stream is not a torch legacy checkpoint (bad magic number)', {
      file,
      expected: `0x${LEGACY_MAGIC.toString(16)}`,
      actual: String(magic.value),
    });
  }
  const proto = next(magic.end, 'protocol');
  if (proto.value !== LEGACY_PROTOCOL) {
    throw new InputError('unsupported legacy protocol version', { file, expected: `${LEGACY_PROTOCOL}`, actual: String(proto.value) });
  }
  const sys = next(proto.end, 'sys_info');
  const littleEndian = sys.value instanceof Map ? sys.value.get('little_endian') : undefined;
  if (littleEndian !== true && littleEndian !== false) throw new InputError('legacy sys_info lacks little_endian', { file });
  const obj = next(sys.end, 'object');
  const keys = next(obj.end, 'storage keys');
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw new InputError('legacy storage key list is not a list of strings', { file });
  }

  // Then, per key in list order: an int64 element count and the raw bytes.
  const offsets = new Map<string, { at: number; bytes: number }>();
  let pos = keys.end;
  const dv = new DataView(all.buffer, all.byteOffset, all.byteLength);
  for (const key of keys.value as string[]) {
    const s = obj.storages.get(key);
    if (!s) throw new InputError(`legacy storage ${JSON.stringify(key)} is listed but never used`, { file });
    if (pos + 8 > all.length) throw new InputError(`legacy storage ${JSON.stringify(key)} is truncated`, { file });
    const count = Number(dv.getBigInt64(pos, littleEndian));
    if (count !== s.numel) {
      throw new InputError(`legacy storage ${JSON.stringify(key)} has the wrong element count`, { file, expected: `${s.numel}`, actual: `${count}` });
    }
    const bytes = count * itemSize(s.dtype, file);
    if (pos + 8 + bytes > all.length) {
      throw new InputError(`legacy storage ${JSON.stringify(key)} is truncated`, { file, expected: `${bytes} bytes`, actual: `${all.length - pos - 8}` });
    }
    offsets.set(key, { at: pos + 8, bytes });
    pos += 8 + bytes;
  }
  for (const key of obj.storages.keys()) {
    if (!offsets.has(key)) throw new InputError(`legacy storage ${JSON.stringify(key)} is used but not in the key list`, { file });
  }
  if (pos !== all.length) throw new InputError(`${all.length - pos} unexpected bytes after the last storage`, { file });
  const bytesOf: StorageBytes = (key) => {
    const o = offsets.get(key)!;
    return all.subarray(o.at, o.at + o.bytes);
  };
  return assemble('torch-legacy', file, obj.value, bytesOf, littleEndian);
}

// ---------------------------------------------------------------------------------------------
// From the unpickled object to a Checkpoint

const MAX_DEPTH = 1000;

function assemble(format: string, file: string, top: PyValue, bytesOf: StorageBytes, littleEndian: boolean): Checkpoint {
  const found = new Map<string, PyTensor>();
  collectTensors(top, [], found, new Set(), file);
  const tensors = new Map<string, TensorRef>();
  for (const [name, t] of found) tensors.set(name, tensorRef(name, file, t, bytesOf, littleEndian));
  const converted = toMeta(top, [], new Set(), file, true);
  const meta =
    converted !== null && typeof converted === 'object' && !Array.isArray(converted) && !(top instanceof PyObject)
      ? (converted as Record<string, unknown>)
      : converted === OMIT
        ? {}
        : { value: converted };
  return { format, path: file, tensors, meta };
}

function keyString(k: PyValue): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint') return String(k);
  if (typeof k === 'boolean') return k ? 'True' : 'False';
  if (k === null) return 'None';
  if (Array.isArray(k)) return `(${k.map(keyString).join(', ')})`;
  if (k instanceof PyGlobal || k instanceof PyObject) return k.qualified;
  return '?';
}

function enter(v: object, path: string[], onPath: Set<object>, file: string): void {
  if (onPath.has(v)) throw new InputError(`pickle structure refers to itself at ${JSON.stringify(path.join('.'))}`, { file });
  if (path.length > MAX_DEPTH) throw new InputError(`pickle structure nested deeper than ${MAX_DEPTH}`, { file });
  onPath.add(v);
}

function collectTensors(v: PyValue, path: string[], out: Map<string, PyTensor>, onPath: Set<object>, file: string): void {
  if (v instanceof PyTensor) {
    const name = path.join('.');
    if (out.has(name)) throw new InputError('two tensors have the same dotted name', { file, tensor: name });
    out.set(name, v);
    return;
  }
  if (!(v instanceof Map) && !Array.isArray(v)) return;
  enter(v, path, onPath, file);
  if (v instanceof Map) for (const [k, x] of v) collectTensors(x, [...path, keyString(k)], out, onPath, file);
  else v.forEach((x, i) => collectTensors(x, [...path, String(i)], out, onPath, file));
  onPath.delete(v);
}

/** Marks a value that is all tensors (listed in `tensors`, so left out of `meta`). */
const OMIT = Symbol('omit');

/** Non-tensor data as plain JSON: Namespace → object, dtype → "torch.float32", enum → {__enum__, value}. */
function toMeta(v: PyValue, path: string[], onPath: Set<object>, file: string, walked: boolean): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return { __bytes__: v.length };
  if (v instanceof PyTensor) return walked ? OMIT : { __tensor__: `${v.dtype}[${v.shape.join(',')}]` };
  if (v instanceof PyStorage) return { __storage__: v.className, numel: v.numel };
  if (v instanceof PyGlobal) return v.qualified;
  enter(v, path, onPath, file);
  try {
    if (v instanceof Map) {
      const o: Record<string, unknown> = {};
      for (const [k, x] of v) {
        const key = keyString(k);
        const c = toMeta(x, [...path, key], onPath, file, walked);
        // defineProperty: a key named "__proto__" must stay a key, not replace the prototype.
        if (c !== OMIT) Object.defineProperty(o, key, { value: c, enumerable: true, writable: true, configurable: true });
      }
      return v.size > 0 && Object.keys(o).length === 0 && walked ? OMIT : o;
    }
    if (Array.isArray(v)) {
      // Keep positions: a tensor (or an all-tensor dict) in a list leaves a pointer to its name(s).
      return v.map((x, i) => {
        const c = toMeta(x, [...path, String(i)], onPath, file, walked);
        if (c !== OMIT) return c;
        return x instanceof PyTensor ? { __tensor__: [...path, i].join('.') } : { __tensors__: [...path, i].join('.') };
      });
    }
    if (v instanceof PySet) return v.items.map((x, i) => toMeta(x, [...path, String(i)], onPath, file, false));
    return objectMeta(v, path, onPath, file);
  } finally {
    onPath.delete(v);
  }
}

function objectMeta(o: PyObject, path: string[], onPath: Set<object>, file: string): unknown {
  const sub = (x: PyValue, k: string) => toMeta(x, [...path, k], onPath, file, false);
  if (o.qualified === 'argparse.Namespace') return o.state instanceof Map ? sub(o.state, '') : {};
  if (o.module === 'megatron' || o.module.startsWith('megatron.')) {
    if (o.args.length === 1 && o.state === undefined) return { __enum__: o.qualified, value: sub(o.args[0], 'value') };
  }
  if (o.name === '_reconstruct' && o.module.startsWith('numpy') && Array.isArray(o.state) && o.state.length === 5) {
    // ndarray.__reduce__ state: (version, shape, dtype, is_fortran, raw data). Summarised: RNG state is not weights.
    const [, shape, dtype, , raw] = o.state;
    return {
      __ndarray__: {
        dtype: dtype instanceof PyObject && typeof dtype.args[0] === 'string' ? dtype.args[0] : 'object',
        shape: sub(shape, 'shape'),
        bytes: raw instanceof Uint8Array ? raw.length : null,
      },
    };
  }
  if (o.qualified === 'numpy.dtype' && typeof o.args[0] === 'string') return { __dtype__: o.args[0] };
  if (o.name === 'scalar' && o.module.startsWith('numpy')) return numpyScalar(o) ?? { __object__: o.qualified };
  return {
    __object__: o.qualified,
    args: o.args.map((a, i) => sub(a, String(i))),
    ...(o.state === undefined ? {} : { state: sub(o.state, 'state') }),
  };
}

/** numpy scalars (`np.float64(0.1)` in some args) pickle as scalar(dtype, raw bytes). */
function numpyScalar(o: PyObject): number | null {
  const [dtype, raw] = o.args;
  if (!(dtype instanceof PyObject) || !(raw instanceof Uint8Array)) return null;
  const code = dtype.args[0];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const readers: Record<string, [number, () => number]> = {
    f8: [8, () => dv.getFloat64(0, true)],
    f4: [4, () => dv.getFloat32(0, true)],
    i8: [8, () => Number(dv.getBigInt64(0, true))],
    i4: [4, () => dv.getInt32(0, true)],
    u8: [8, () => Number(dv.getBigUint64(0, true))],
    u4: [4, () => dv.getUint32(0, true)],
  };
  const r = typeof code === 'string' ? own(readers, code) : undefined;
  return r && raw.length === r[0] ? r[1]() : null;
}

// ---------------------------------------------------------------------------------------------
// Tensors: bounds at open, values on demand

const ITEM_SIZE: Partial<Record<DType, number>> = {
  BOOL: 1, U8: 1, I8: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8, C64: 8,
  F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1, F8_E4M3FNUZ: 1, F8_E5M2FNUZ: 1,
};

function itemSize(dtype: DType, file: string): number {
  const n = ITEM_SIZE[dtype];
  if (n === undefined) throw new InputError(`dtype ${dtype} is not supported in torch files`, { file });
  return n;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function tensorRef(name: string, file: string, t: PyTensor, bytesOf: StorageBytes, littleEndian: boolean): TensorRef {
  const size = itemSize(t.dtype, file);
  const s = t.storage;
  const storageBytes = s.numel * itemSize(s.dtype, file);
  const viewStart = (s.view?.offset ?? 0) * itemSize(s.dtype, file);
  if (viewStart % size !== 0 || storageBytes % size !== 0) {
    throw new InputError(`storage of ${s.className} does not hold whole ${t.dtype} elements`, { file, tensor: name });
  }
  // Element e of the tensor's dtype sits at byte (base + e) · size of the root storage.
  const base = viewStart / size + t.offset;
  const elements = storageBytes / size; // of the (possibly view) storage, from its start
  const n = checkedNumel(t.shape, file, name);
  if (t.stride.length !== t.shape.length) throw new InputError('size and stride differ in rank', { file, tensor: name });
  if (n > 0) {
    let last = t.offset;
    for (let d = 0; d < t.shape.length; d++) last += (t.shape[d] - 1) * t.stride[d];
    if (!Number.isSafeInteger(last) || last >= elements) {
      throw new InputError(`storage too small for the tensor's size/stride/offset`, {
        file,
        tensor: name,
        expected: `last element index < ${elements} (storage ${s.key})`,
        actual: `${last} (offset ${t.offset}, size [${t.shape}], stride [${t.stride}])`,
      });
    }
  }
  const contiguous = isContiguous(t.shape, t.stride);
  const shape = [...t.shape];
  return {
    name,
    dtype: t.dtype,
    shape,
    file,
    toFloat32(): Float32Array {
      if (n === 0) return new Float32Array(0); // its offset may point anywhere; there is nothing to read
      const bytes = bytesOf(s.key);
      if (t.dtype === 'F32' && contiguous && littleEndian && HOST_LE && (bytes.byteOffset + base * 4) % 4 === 0) {
        // A view of the file's buffer, as inMemoryTensor returns its own array: callers must not
        // write into it (tied names share the bytes).
        return new Float32Array(bytes.buffer, bytes.byteOffset + base * 4, n);
      }
      const read = floatReader(t.dtype, bytes, littleEndian, file, name);
      const out = new Float32Array(n);
      forEachElement(shape, t.stride, base, (k, e) => {
        out[k] = read(e);
      });
      return out;
    },
    toInt32(): Int32Array {
      const read = floatReader(t.dtype, bytesOf(s.key), littleEndian, file, name);
      const out = new Int32Array(n);
      forEachElement(shape, t.stride, base, (k, e) => {
        const v = read(e);
        if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
          throw new InputError('value does not fit int32', { file, tensor: name, expected: 'an integer in int32 range', actual: String(v) });
        }
        out[k] = v;
      });
      return out;
    },
  };
}

function checkedNumel(shape: readonly number[], file: string, name: string): number {
  const n = numel(shape);
  if (!Number.isSafeInteger(n)) throw new InputError('tensor has too many elements', { file, tensor: name, actual: `[${shape}]` });
  return n;
}

/** C-contiguous up to dims of size 1, whose stride torch leaves arbitrary. */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/** Calls fn(k, e) for output index k (C order) and storage element e, innermost dimension in a tight loop. */
function forEachElement(shape: readonly number[], stride: readonly number[], base: number, fn: (k: number, e: number) => void): void {
  const r = shape.length;
  if (numel(shape) === 0) return;
  if (r === 0) {
    fn(0, base);
    return;
  }
  const inner = shape[r - 1];
  const step = stride[r - 1];
  const idx = new Array<number>(r - 1).fill(0);
  let off = base;
  let k = 0;
  for (;;) {
    for (let j = 0, e = off; j < inner; j++, e += step) fn(k++, e);
    let d = r - 2;
    for (; d >= 0; d--) {
      idx[d]++;
      off += stride[d];
      if (idx[d] < shape[d]) break;
      off -= stride[d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/** Element e of `bytes` as a number (F16/BF16/F8 widened exactly, integers exact below 2^53). */
function floatReader(dtype: DType, bytes: Uint8Array, le: boolean, file: string, name: string): (e: number) => number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      return (e) => dv.getFloat32(e * 4, le);
    case 'F64':
      return (e) => dv.getFloat64(e * 8, le);
    case 'F16': {
      const table = halfTable();
      return (e) => table[dv.getUint16(e * 2, le)];
    }
    case 'BF16': {
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      return (e) => {
        u[0] = dv.getUint16(e * 2, le) << 16; // bf16 is the top half of an f32
        return f[0];
      };
    }
    case 'F8_E5M2': {
      const table = halfTable();
      return (e) => table[bytes[e] << 8]; // e5m2 is the top byte of an f16
    }
    case 'F8_E4M3':
      return (e) => e4m3fn(bytes[e]);
    case 'I64':
      return le ? (e) => dv.getUint32(e * 8, true) + dv.getInt32(e * 8 + 4, true) * 2 ** 32 : (e) => dv.getUint32(e * 8 + 4, false) + dv.getInt32(e * 8, false) * 2 ** 32;
    case 'U64':
      return le ? (e) => dv.getUint32(e * 8, true) + dv.getUint32(e * 8 + 4, true) * 2 ** 32 : (e) => dv.getUint32(e * 8 + 4, false) + dv.getUint32(e * 8, false) * 2 ** 32;
    case 'I32':
      return (e) => dv.getInt32(e * 4, le);
    case 'U32':
      return (e) => dv.getUint32(e * 4, le);
    case 'I16':
      return (e) => dv.getInt16(e * 2, le);
    case 'U16':
      return (e) => dv.getUint16(e * 2, le);
    case 'I8':
      return (e) => dv.getInt8(e);
    case 'U8':
      return (e) => bytes[e];
    case 'BOOL':
      return (e) => (bytes[e] !== 0 ? 1 : 0);
    default:
      throw new InputError(`${dtype} tensors cannot be converted to numbers`, { file, tensor: name });
  }
}

let HALF: Float32Array | null = null;

/** All 65536 half-precision values, decoded once (subnormals, infinities and NaN included). */
function halfTable(): Float32Array {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    HALF[h] =
      exp === 0 ? sign * man * 2 ** -24 : exp === 31 ? (man ? NaN : sign * Infinity) : sign * (1 + man / 1024) * 2 ** (exp - 15);
  }
  return HALF;
}

/** float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN. */
function e4m3fn(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >> 3) & 0xf;
  const man = b & 0x7;
  if (exp === 15 && man === 7) return NaN;
  return exp === 0 ? sign * man * 2 ** -9 : sign * (1 + man / 8) * 2 ** (exp - 7);
}

