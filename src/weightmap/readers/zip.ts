/**
 * Random access into the uncompressed (STORED) zips that `torch.save` writes since torch 1.6.
 *
 * torch's writer (miniz, `caffe2/serialize/inline_container.cc`) sets flag 0x0808 and writes
 * zero CRC/sizes in every local header, followed by a data descriptor; the truth is in the
 * central directory, which torch always ends with a ZIP64 end record even for small files.
 * Each record's data is 64-byte aligned by a local-header extra field ("FB", filled with 'Z'),
 * so the data offset must be computed from the local header, never assumed.
 *
 * Every offset and length read from the file is bounds-checked before use: a lying directory
 * is an InputError naming the file, never a RangeError or a read past the end.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import zlib from 'node:zlib';
import { InputError } from '../../errors.ts';

/** Bytes of a file, either held in memory (views, no copies) or read on demand. */
export interface ByteSource {
  readonly path: string;
  readonly size: number;
  /** True when the whole file is held in memory: reads are views and stay valid. */
  readonly inMemory: boolean;
  /** Bytes [offset, offset + length). The caller has bounds-checked; a short read is an InputError. */
  read(offset: number, length: number): Uint8Array;
}

/**
 * Files up to this size are read into one Buffer so that aligned float32 tensors can be
 * zero-copy views of it; bigger ones are read per record so memory follows what is used.
 */
export const WHOLE_FILE_LIMIT = 2 ** 31;

export function openByteSource(path: string, wholeFileLimit = WHOLE_FILE_LIMIT): ByteSource {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw new InputError('cannot open file', { file: path, cause });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new InputError('not a regular file', { file: path, expected: 'a file', actual: 'a folder or device' });
    if (stat.size <= wholeFileLimit) return bufferSource(path, readFully(fd, path, 0, stat.size));
  } finally {
    closeSync(fd);
  }
  return fileSource(path);
}

export function bufferSource(path: string, buf: Uint8Array): ByteSource {
  return {
    path,
    size: buf.length,
    inMemory: true,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > buf.length) {
        throw new InputError(`read of ${length} bytes at ${offset} is past the end of the file`, {
          file: path,
          expected: `at most ${buf.length} bytes`,
          actual: `${offset + length}`,
        });
      }
      return buf.subarray(offset, offset + length);
    },
  };
}

function fileSource(path: string): ByteSource {
  let size: number;
  const fd0 = openSync(path, 'r');
  try {
    size = fstatSync(fd0).size;
  } finally {
    closeSync(fd0);
  }
  return {
    path,
    size,
    inMemory: false,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new InputError(`read of ${length} bytes at ${offset} is past the end of the file`, { file: path });
      }
      // One open per read: a Checkpoint has no close(), so no descriptor may outlive the call.
      const fd = openSync(path, 'r');
      try {
        return readFully(fd, path, offset, length);
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** readFileSync stops at 2 GiB; read in chunks into one preallocated Buffer instead. */
function readFully(fd: number, path: string, offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const CHUNK = 1 << 26;
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(CHUNK, length - done), offset + done);
    if (n <= 0) throw new InputError('file shrank while being read', { file: path, expected: `${length} bytes`, actual: `${done}` });
    done += n;
  }
  return out;
}

export interface ZipEntry {
  readonly name: string;
  /** File offset of the first data byte (after the local header, its name and its extra field). */
  readonly dataOffset: number;
  readonly size: number;
  readonly crc32: number;
}

export interface ZipArchive {
  readonly source: ByteSource;
  /** Entries in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** The folder every entry lives in, without the slash (`pytorch_model`, `archive`, …). */
  readonly top: string;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const utf8 = new TextDecoder('utf-8');

export function readZip(source: ByteSource): ZipArchive {
  const file = source.path;
  const fail = (message: string, expected?: string, actual?: string): never => {
    throw new InputError(`zip: ${message}`, { file, expected, actual });
  };
  if (source.size < EOCD_SIZE) fail('file too short for a zip end record', `>= ${EOCD_SIZE} bytes`, `${source.size}`);

  // The end record sits before a comment of up to 64 KiB; search backwards for its signature.
  const tailLen = Math.min(source.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = source.size - tailLen;
  const tail = view(source.read(tailStart, tailLen));
  let eocd = -1;
  for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
    if (tail.getUint32(i, true) === SIG_EOCD && i + EOCD_SIZE + tail.getUint16(i + 20, true) === tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record (truncated or not a zip)');
  const eocdOffset = tailStart + eocd;
  if (tail.getUint16(eocd + 4, true) !== 0 || tail.getUint16(eocd + 6, true) !== 0) fail('multi-disk zips are not supported');
  let count = tail.getUint16(eocd + 10, true);
  let cdSize = tail.getUint32(eocd + 12, true);
  let cdOffset = tail.getUint32(eocd + 16, true);
  let cdEnd = eocdOffset;

  // torch always writes the ZIP64 records; they are authoritative when present.
  if (eocdOffset >= 20) {
    const loc = view(source.read(eocdOffset - 20, 20));
    if (loc.getUint32(0, true) === SIG_LOCATOR64) {
      const z64Offset = u64(loc, 8, fail);
      if (z64Offset + 56 > eocdOffset - 20) fail('ZIP64 end record offset out of range', `< ${eocdOffset - 20 - 56}`, `${z64Offset}`);
      const z = view(source.read(z64Offset, 56));
      if (z.getUint32(0, true) !== SIG_EOCD64) fail(`no ZIP64 end record at offset ${z64Offset}`);
      count = u64(z, 32, fail);
      cdSize = u64(z, 40, fail);
      cdOffset = u64(z, 48, fail);
      cdEnd = z64Offset;
    }
  }
  if (cdOffset + cdSize > cdEnd) {
    fail('central directory runs past its end record', `offset+size <= ${cdEnd}`, `${cdOffset}+${cdSize}`);
  }
  // Each central header is at least 46 bytes: a count that cannot fit is a lie, not a reason to loop.
  if (count * 46 > cdSize) fail('entry count does not fit the central directory', `<= ${Math.floor(cdSize / 46)}`, `${count}`);

  const cd = view(source.read(cdOffset, cdSize));
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || cd.getUint32(p, true) !== SIG_CENTRAL) fail(`central directory entry ${i} is malformed at offset ${cdOffset + p}`);
    const flags = cd.getUint16(p + 8, true);
    const method = cd.getUint16(p + 10, true);
    const crc32 = cd.getUint32(p + 16, true);
    let compSize = cd.getUint32(p + 20, true);
    let size = cd.getUint32(p + 24, true);
    const nameLen = cd.getUint16(p + 28, true);
    const extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    let localOffset = cd.getUint32(p + 42, true);
    const recEnd = p + 46 + nameLen + extraLen + commentLen;
    if (recEnd > cdSize) fail(`central directory entry ${i} runs past the directory`);
    const name = utf8.decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, nameLen));
    // ZIP64 extended information (id 0x0001): 8-byte values for each field saturated at 0xffffffff, in this order.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = cd.getUint16(e, true);
      const len = cd.getUint16(e + 2, true);
      if (e + 4 + len > p + 46 + nameLen + extraLen) fail(`entry ${JSON.stringify(name)}: extra field runs past its header`);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + len) fail(`entry ${JSON.stringify(name)}: ZIP64 extra field too short`);
          const v = u64(cd, q, fail);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compSize === 0xffffffff) compSize = take();
        if (localOffset === 0xffffffff) localOffset = take();
      }
      e += 4 + len;
    }
    if (flags & 0x0001) fail(`entry ${JSON.stringify(name)} is encrypted`);
    if (method !== 0) {
      fail(`entry ${JSON.stringify(name)} is compressed; torch writes STORED entries only`, 'method 0 (stored)', `method ${method}`);
    }
    if (compSize !== size) fail(`entry ${JSON.stringify(name)}: stored sizes differ`, `${size}`, `${compSize}`);
    if (entries.has(name)) fail(`duplicate entry ${JSON.stringify(name)}`);
    const dataOffset = localDataOffset(source, name, localOffset, cdOffset, fail);
    if (dataOffset + size > cdOffset) {
      fail(`entry ${JSON.stringify(name)} data runs into the central directory`, `end <= ${cdOffset}`, `${dataOffset}+${size}`);
    }
    entries.set(name, { name, dataOffset, size, crc32 });
    p = recEnd;
  }
  if (entries.size === 0) fail('archive has no entries');
  const first = entries.keys().next().value as string;
  const slash = first.indexOf('/');
  if (slash <= 0) fail(`first entry ${JSON.stringify(first)} is not inside a folder`, '<folder>/data.pkl', first);
  return { source, entries, top: first.slice(0, slash) };
}

function localDataOffset(
  source: ByteSource,
  name: string,
  localOffset: number,
  limit: number,
  fail: (m: string, e?: string, a?: string) => never,
): number {
  if (localOffset + 30 > limit) fail(`entry ${JSON.stringify(name)}: local header offset out of range`, `< ${limit - 30}`, `${localOffset}`);
  const h = view(source.read(localOffset, 30));
  if (h.getUint32(0, true) !== SIG_LOCAL) fail(`entry ${JSON.stringify(name)}: no local header at offset ${localOffset}`);
  if (h.getUint16(8, true) !== 0) fail(`entry ${JSON.stringify(name)} is compressed in its local header`, 'method 0', `method ${h.getUint16(8, true)}`);
  const nameLen = h.getUint16(26, true);
  const extraLen = h.getUint16(28, true);
  const dataOffset = localOffset + 30 + nameLen + extraLen;
  if (dataOffset > limit) fail(`entry ${JSON.stringify(name)}: local header runs into the central directory`);
  const localName = utf8.decode(source.read(localOffset + 30, nameLen));
  if (localName !== name) fail(`local header name differs from the central directory`, JSON.stringify(name), JSON.stringify(localName));
  return dataOffset;
}

/** The entry's bytes, checked against the directory's CRC-32 (the only guard against flipped data bits). */
export function readEntry(zip: ZipArchive, entry: ZipEntry): Uint8Array {
  const bytes = zip.source.read(entry.dataOffset, entry.size);
  const crc = crc32(bytes);
  if (crc !== entry.crc32) {
    throw new InputError(`zip: entry ${JSON.stringify(entry.name)} fails its CRC-32 check (corrupt data)`, {
      file: zip.source.path,
      expected: hex(entry.crc32),
      actual: hex(crc),
    });
  }
  return bytes;
}

export function crc32(bytes: Uint8Array): number {
  // zlib.crc32 is native (GB/s); it appeared in Node 20.15, so keep a table fallback for older 20.x.
  const native = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
  if (native) return native(bytes) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(v: DataView, at: number, fail: (m: string) => never): number {
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) fail(`64-bit field ${x} is beyond any real file size`);
  return Number(x);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
