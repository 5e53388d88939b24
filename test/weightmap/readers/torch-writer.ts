/**
 * Test-only writer of `torch.save` files, byte for byte in the layout torch 1.13 writes
 * (FORMATS.md §4): a STORED zip with 64-byte aligned records padded by an "FB" local extra
 * field, zeroed local sizes with flag 0x0808 and data descriptors, a ZIP64 end record; or the
 * legacy stream (magic, protocol, sys_info, object, keys, then count-prefixed storages).
 *
 * Used by the reader tests for what the baselines lack (every dtype, views, legacy files,
 * malformed records) and by the benchmark. It shares no code with the reader on purpose.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import zlib from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// Values to pickle

export type StorageClass =
  | 'Float' | 'Double' | 'Half' | 'BFloat16' | 'Long' | 'Int' | 'Short' | 'Char' | 'Byte' | 'Bool' | 'Untyped';

export const ITEM_BYTES: Record<StorageClass, number> = {
  Float: 4, Double: 8, Half: 2, BFloat16: 2, Long: 8, Int: 4, Short: 2, Char: 1, Byte: 1, Bool: 1, Untyped: 1,
};

/** A storage: raw little-endian bytes. Tensors that share one object share one record (ties, views). */
export class Storage {
  constructor(
    readonly cls: StorageClass,
    readonly bytes: Uint8Array | (() => Uint8Array),
    readonly byteLength: number = typeof bytes === 'function' ? -1 : bytes.length,
    readonly location = 'cpu',
  ) {}
}

export class Tensor {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    /** `_rebuild_tensor_v3`'s dtype argument (torch.<name>) for untyped storages. */
    readonly v3dtype?: string,
  ) {}
}

export class Tuple {
  constructor(readonly items: PValue[]) {}
}
/** A Python float (a JS integer would otherwise pickle as an int). */
export class Float {
  constructor(readonly value: number) {}
}
export class OrderedDict {
  constructor(readonly entries: [PValue, PValue][]) {}
}
/** `argparse.Namespace(**fields)` as Python pickles it: NEWOBJ on an empty tuple, then BUILD. */
export class Namespace {
  constructor(readonly fields: Record<string, PValue>) {}
}
/** REDUCE of an arbitrary global: `GLOBAL module name; args; REDUCE` (Megatron enums, dtypes…). */
export class Reduce {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: PValue[],
  ) {}
}
export class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
/** Bytes spliced into the pickle as they are (hand-assembled opcodes). */
export class Raw {
  constructor(readonly bytes: Uint8Array) {}
}

export type PValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PValue[] | Tuple | Float | Map<PValue, PValue> | OrderedDict | Namespace | Reduce | Global | Raw | Tensor
  | { [k: string]: PValue };

/** A contiguous tensor with its own storage. */
export function f32(values: ArrayLike<number>, shape: number[]): Tensor {
  const a = Float32Array.from(values);
  return new Tensor(new Storage('Float', new Uint8Array(a.buffer)), 0, shape, contiguousStride(shape));
}

export function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Pickle (protocol 2)

class Out {
  private chunks: Uint8Array[] = [];
  byte(...b: number[]): void {
    this.chunks.push(Uint8Array.from(b));
  }
  raw(b: Uint8Array): void {
    this.chunks.push(b);
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.raw(b);
  }
  text(s: string): void {
    this.raw(Buffer.from(s, 'utf8'));
  }
  done(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

const enc = new TextEncoder();

export class Pickler {
  private readonly out = new Out();
  /** Storages in first-use order; the key of each is its index. */
  readonly storages: Storage[] = [];
  private readonly keys = new Map<Storage, string>();

  constructor(
    private readonly legacy = false,
    private readonly keyOf: (i: number) => string = String,
  ) {}

  pickle(v: PValue): Uint8Array {
    this.out.byte(0x80, 2);
    this.value(v);
    this.out.byte(0x2e);
    return this.out.done();
  }

  private global(module: string, name: string): void {
    this.out.byte(0x63);
    this.out.text(`${module}\n${name}\n`);
  }

  private str(s: string): void {
    const b = enc.encode(s);
    this.out.byte(0x58);
    this.out.u32(b.length);
    this.out.raw(b);
  }

  private int(n: number | bigint): void {
    if (typeof n === 'number' && n >= 0 && n < 256) this.out.byte(0x4b, n);
    else if (typeof n === 'number' && n >= 0 && n < 65536) this.out.byte(0x4d, n & 0xff, n >> 8);
    else if (typeof n === 'number' && n >= -(2 ** 31) && n < 2 ** 31) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      this.out.byte(0x4a);
      this.out.raw(b);
    } else {
      // LONG1: little-endian two's complement, minimal length
      let v = BigInt(n);
      const bytes: number[] = [];
      for (;;) {
        bytes.push(Number(v & 0xffn));
        v >>= 8n;
        const sign = bytes[bytes.length - 1] & 0x80;
        if ((v === 0n && !sign) || (v === -1n && sign)) break;
      }
      this.out.byte(0x8a, bytes.length, ...bytes);
    }
  }

  private tuple(items: PValue[]): void {
    this.out.byte(0x28);
    for (const x of items) this.value(x);
    this.out.byte(0x74);
  }

  private setitems(entries: [PValue, PValue][]): void {
    if (!entries.length) return;
    this.out.byte(0x28);
    for (const [k, v] of entries) {
      this.value(k);
      this.value(v);
    }
    this.out.byte(0x75);
  }

  private tensor(t: Tensor): void {
    let key = this.keys.get(t.storage);
    if (key === undefined) {
      key = this.keyOf(this.storages.length);
      this.keys.set(t.storage, key);
      this.storages.push(t.storage);
    }
    const s = t.storage;
    this.global('torch._utils', t.v3dtype ? '_rebuild_tensor_v3' : '_rebuild_tensor_v2');
    this.out.byte(0x28); // MARK: the argument tuple
    this.out.byte(0x28); // MARK: the persistent id
    this.str('storage');
    this.global('torch', `${s.cls}Storage`);
    this.str(key);
    this.str(s.location);
    this.int(storageLength(s) / ITEM_BYTES[s.cls]);
    if (this.legacy) this.out.byte(0x4e); // view_metadata None
    this.out.byte(0x74, 0x51); // TUPLE, BINPERSID
    this.int(t.offset);
    this.tuple(t.shape);
    this.tuple(t.stride);
    this.out.byte(0x89); // requires_grad False
    this.global('collections', 'OrderedDict');
    this.out.byte(0x29, 0x52); // backward_hooks = OrderedDict()
    if (t.v3dtype) {
      this.global('torch', t.v3dtype);
      this.out.byte(0x4e); // metadata None
    }
    this.out.byte(0x74, 0x52); // TUPLE, REDUCE
  }

  private value(v: PValue): void {
    if (v === null) this.out.byte(0x4e);
    else if (v === true) this.out.byte(0x88);
    else if (v === false) this.out.byte(0x89);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) this.int(v);
      else this.value(new Float(v));
    } else if (typeof v === 'bigint') this.int(v);
    else if (typeof v === 'string') this.str(v);
    else if (v instanceof Float) {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v.value);
      this.out.byte(0x47);
      this.out.raw(b);
    } else if (v instanceof Uint8Array) {
      this.out.byte(0x42);
      this.out.u32(v.length);
      this.out.raw(v);
    } else if (Array.isArray(v)) {
      this.out.byte(0x5d);
      if (v.length) {
        this.out.byte(0x28);
        for (const x of v) this.value(x);
        this.out.byte(0x65);
      }
    } else if (v instanceof Tuple) this.tuple(v.items);
    else if (v instanceof Map) {
      this.out.byte(0x7d);
      this.setitems([...v]);
    } else if (v instanceof OrderedDict) {
      this.global('collections', 'OrderedDict');
      this.out.byte(0x29, 0x52);
      this.setitems(v.entries);
    } else if (v instanceof Namespace) {
      this.global('argparse', 'Namespace');
      this.out.byte(0x29, 0x81, 0x7d); // EMPTY_TUPLE NEWOBJ EMPTY_DICT
      this.setitems(Object.entries(v.fields));
      this.out.byte(0x62); // BUILD
    } else if (v instanceof Reduce) {
      this.global(v.module, v.name);
      this.tuple(v.args);
      this.out.byte(0x52);
    } else if (v instanceof Global) this.global(v.module, v.name);
    else if (v instanceof Raw) this.out.raw(v.bytes);
    else if (v instanceof Tensor) this.tensor(v);
    else {
      this.out.byte(0x7d);
      this.setitems(Object.entries(v));
    }
  }
}

function storageBytes(s: Storage): Uint8Array {
  return typeof s.bytes === 'function' ? s.bytes() : s.bytes;
}

function storageLength(s: Storage): number {
  return s.byteLength >= 0 ? s.byteLength : storageBytes(s).length;
}

// ---------------------------------------------------------------------------------------------
// Zip

export interface ZipRecord {
  name: string;
  data: Uint8Array | (() => Uint8Array);
}

export interface ZipOptions {
  /** Write every central size/offset as 0xffffffff with a ZIP64 extra field (what huge files need). */
  zip64Extra?: boolean;
}

/** Writes records the way torch's PyTorchStreamWriter does. Returns the bytes written. */
export function writeZip(path: string, records: ZipRecord[], opts: ZipOptions = {}): number {
  const fd = openSync(path, 'w');
  let pos = 0;
  const put = (b: Uint8Array) => {
    let done = 0;
    while (done < b.length) done += writeSync(fd, b, done, b.length - done, pos + done);
    pos += b.length;
  };
  try {
    const central: Buffer[] = [];
    for (const r of records) {
      const name = Buffer.from(r.name, 'utf8');
      const headerOffset = pos;
      // Pad with an "FB" extra field so that the data starts on a 64-byte boundary.
      const pad = (64 - ((headerOffset + 30 + name.length + 4) % 64)) % 64;
      const extra = Buffer.alloc(4 + pad, 'Z');
      extra.writeUInt16LE(0x4246, 0);
      extra.writeUInt16LE(pad, 2);
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(0x0808, 6); // sizes and CRC follow in a data descriptor
      local.writeUInt16LE(name.length, 26);
      local.writeUInt16LE(extra.length, 28);
      put(local);
      put(name);
      put(extra);
      const data = typeof r.data === 'function' ? r.data() : r.data;
      const crc = zlib.crc32(data) >>> 0;
      put(data);
      const dd = Buffer.alloc(16);
      dd.writeUInt32LE(0x08074b50, 0);
      dd.writeUInt32LE(crc, 4);
      dd.writeUInt32LE(data.length >>> 0, 8);
      dd.writeUInt32LE(data.length >>> 0, 12);
      put(dd);
      const c = Buffer.alloc(46);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(0x0808, 8);
      c.writeUInt32LE(crc, 16);
      let z64: Buffer = Buffer.alloc(0);
      if (opts.zip64Extra) {
        c.writeUInt32LE(0xffffffff, 20);
        c.writeUInt32LE(0xffffffff, 24);
        c.writeUInt32LE(0xffffffff, 42);
        z64 = Buffer.alloc(28);
        z64.writeUInt16LE(0x0001, 0);
        z64.writeUInt16LE(24, 2);
        z64.writeBigUInt64LE(BigInt(data.length), 4); // uncompressed first, as the spec orders them
        z64.writeBigUInt64LE(BigInt(data.length), 12);
        z64.writeBigUInt64LE(BigInt(headerOffset), 20);
      } else {
        c.writeUInt32LE(data.length, 20);
        c.writeUInt32LE(data.length, 24);
        c.writeUInt32LE(headerOffset, 42);
      }
      c.writeUInt16LE(name.length, 28);
      c.writeUInt16LE(z64.length, 30);
      central.push(Buffer.concat([c, name, z64]));
    }
    const cdOffset = pos;
    for (const c of central) put(c);
    const cdSize = pos - cdOffset;
    const eocd64Offset = pos;
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeBigUInt64LE(BigInt(records.length), 24);
    z.writeBigUInt64LE(BigInt(records.length), 32);
    z.writeBigUInt64LE(BigInt(cdSize), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    put(z);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(eocd64Offset), 8);
    loc.writeUInt32LE(1, 16);
    put(loc);
    const e = Buffer.alloc(22);
    e.writeUInt32LE(0x06054b50, 0);
    e.writeUInt16LE(Math.min(records.length, 0xffff), 8);
    e.writeUInt16LE(Math.min(records.length, 0xffff), 10);
    e.writeUInt32LE(Math.min(cdSize, 0xffffffff), 12);
    e.writeUInt32LE(Math.min(cdOffset, 0xffffffff), 16);
    put(e);
  } finally {
    closeSync(fd);
  }
  return pos;
}

export interface TorchZipOptions extends ZipOptions {
  /** Folder inside the zip; torch uses the file's basename. */
  top?: string;
  /** Replace data.pkl (hand-assembled pickles). */
  pickle?: Uint8Array;
  /** Leave out records by name (relative to the folder); `extra` may then put a different one back. */
  omit?: string[];
  /** Extra records (relative to the folder). */
  extra?: ZipRecord[];
}

export function writeTorchZip(path: string, obj: PValue, opts: TorchZipOptions = {}): number {
  const top = opts.top ?? 'archive';
  const p = new Pickler();
  const pkl = p.pickle(obj);
  const records: ZipRecord[] = [{ name: 'data.pkl', data: opts.pickle ?? pkl }];
  p.storages.forEach((s, i) => records.push({ name: `data/${i}`, data: () => storageBytes(s) }));
  records.push({ name: 'version', data: enc.encode('3\n') });
  const kept = records.filter((r) => !(opts.omit ?? []).includes(r.name));
  kept.push(...(opts.extra ?? []));
  return writeZip(path, kept.map((r) => ({ ...r, name: `${top}/${r.name}` })), opts);
}

// ---------------------------------------------------------------------------------------------
// Legacy stream (torch < 1.6, `_use_new_zipfile_serialization=False`)

export function legacyBytes(obj: PValue): Uint8Array {
  // Keys are storage addresses in real files; any distinct strings do.
  const p = new Pickler(true, (i) => String(140000000 + 64 * i));
  const magic = new Pickler().pickle(0x1950a86a20f9469cfc6cn);
  const proto = new Pickler().pickle(1001);
  const sys = new Pickler().pickle({ protocol_version: 1001, little_endian: true, type_sizes: { short: 2, int: 4, long: 4 } });
  const body = p.pickle(obj);
  const keys = p.storages.map((_, i) => String(140000000 + 64 * i));
  const keyList = new Pickler().pickle(keys);
  const parts: Uint8Array[] = [magic, proto, sys, body, keyList];
  for (const s of p.storages) {
    const b = storageBytes(s);
    const n = Buffer.alloc(8);
    n.writeBigInt64LE(BigInt(b.length / ITEM_BYTES[s.cls]));
    parts.push(n, b);
  }
  return Buffer.concat(parts);
}

