/**
 * A corpus of broken and hostile torch files. Every case must end in an InputError that names the
 * file (and the refused global for hostile pickles), promptly, with nothing executed.
 *
 * The hostile pickles are real exploits: under Python's `pickle.loads` each one creates the
 * marker file (checked by hand with CPython 3.11 for every route; nt.system only exists on
 * Windows). Here the marker must never appear.
 *
 * Bit flips target the bytes a reader can detect: signatures, names, lengths, offsets, methods,
 * CRCs and any data byte (the CRC covers it). Flips in fields no reader uses (DOS time and
 * date, "version made by", the zeroed local sizes, the 'Z' padding, the data descriptors) leave
 * a loadable file, for torch too, so they are not in the corpus.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { readTorchCheckpoint } from '../../../src/weightmap/readers/torch.ts';
import { f32, OrderedDict, Storage, Tensor, writeTorchZip } from './torch-writer.ts';

const BIN = join(import.meta.dirname, '../../../baselines/bert/pytorch_model.bin');
const tmp = mkdtempSync(join(tmpdir(), 'parity-malformed-'));
const MARKER = join(tmp, 'pwned');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const original = readFileSync(BIN);

/** Where things are in the real file, found here by scanning for signatures (not by the reader). */
function layout(buf: Buffer) {
  const sig = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const eocd64 = buf.lastIndexOf(sig(0x06064b50));
  const cdOffset = Number(buf.readBigUInt64LE(eocd64 + 48));
  const count = Number(buf.readBigUInt64LE(eocd64 + 32));
  const entries: { name: string; central: number; local: number; data: number; size: number }[] = [];
  for (let i = 0, p = cdOffset; i < count; i++) {
    const nameLen = buf.readUInt16LE(p + 28);
    const local = buf.readUInt32LE(p + 42);
    entries.push({
      name: buf.toString('utf8', p + 46, p + 46 + nameLen),
      central: p,
      local,
      data: local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28),
      size: buf.readUInt32LE(p + 24),
    });
    p += 46 + nameLen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
  }
  return { cdOffset, eocd64, locator: buf.lastIndexOf(sig(0x07064b50)), eocd: buf.lastIndexOf(sig(0x06054b50)), entries };
}

const L = layout(original);
const entry = (name: string) => L.entries.find((e) => e.name === `pytorch_model/${name}`)!;
const pkl = entry('data.pkl');
const storages = L.entries.filter((e) => e.name.includes('/data/'));
const biggest = [...storages].sort((a, b) => b.size - a.size)[0];
const second = entry('version');

let fileNo = 0;
function save(bytes: Uint8Array, ext = '.bin'): string {
  const p = join(tmp, `case${fileNo++}${ext}`);
  writeFileSync(p, bytes);
  return p;
}

const truncated = (at: number) => () => save(original.subarray(0, at));
const flipped = (at: number, bit = 0) => () => {
  const b = Buffer.from(original);
  b[at] ^= 1 << bit;
  return save(b);
};
const patched = (edit: (b: Buffer) => void) => () => {
  const b = Buffer.from(original);
  edit(b);
  return save(b);
};

// --- pickles assembled by hand ---------------------------------------------------------------

type Part = number | string | ArrayLike<number>;
function pk(...parts: Part[]): Uint8Array {
  return Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(Array.from(p)))));
}
const u32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const X = (s: string) => pk('X', u32(Buffer.byteLength(s)), s);
const short = (s: string) => pk(0x8c, Buffer.byteLength(s), s);
const P2 = [0x80, 2];

/** The arguments that make each callable create MARKER under CPython. */
const EXPLOITS: Record<string, Uint8Array> = {
  'os.system': X(`touch ${MARKER}`),
  'posix.system': X(`touch ${MARKER}`),
  'nt.system': X(`type nul > ${MARKER}`),
  'builtins.eval': X(`open('${MARKER}','w').close()`),
  'builtins.exec': X(`open('${MARKER}','w').close()`),
  'subprocess.Popen': pk(']', '(', X('touch'), X(MARKER), 'e'),
  'runpy._run_code': pk(X(`open('${MARKER}','w').close()`), '}'),
  'builtins.open': pk(X(MARKER), X('w')),
};

function hostile(global: string, route: 'GLOBAL' | 'STACK_GLOBAL' | 'INST' | 'OBJ'): Uint8Array {
  const dot = global.lastIndexOf('.');
  const [mod, name] = [global.slice(0, dot), global.slice(dot + 1)];
  const args = EXPLOITS[global];
  switch (route) {
    case 'GLOBAL':
      return pk(P2, 'c', `${mod}\n${name}\n`, '(', args, 't', 'R', '.');
    case 'STACK_GLOBAL':
      return pk(0x80, 4, short(mod), short(name), 0x93, '(', args, 't', 'R', '.');
    case 'INST':
      return pk(P2, '(', args, 'i', `${mod}\n${name}\n`, '.');
    case 'OBJ':
      return pk(P2, '(', 'c', `${mod}\n${name}\n`, args, 'o', '.');
  }
}

/** `__import__('os')` memoised, then getattr(_, 'system')('touch MARKER'): __import__ comes first. */
const importChain = pk(P2, 'c', 'builtins\n__import__\n', '(', X('os'), 't', 'R', 'q', 0, '0',
  'c', 'builtins\ngetattr\n', '(', 'h', 0, X('system'), 't', 'R', '(', X(`touch ${MARKER}`), 't', 'R', '.');

/** data.pkl replaced, everything else a valid archive. */
const inZip = (pickle: Uint8Array) => () => {
  const p = join(tmp, `case${fileNo++}.bin`);
  writeTorchZip(p, new OrderedDict([['w', f32([1, 2], [2])]]), { top: 'case', pickle });
  return p;
};
/** The pickle as a whole legacy-format file (leading \x80 sends it to the legacy reader). */
const asLegacy = (pickle: Uint8Array) => () => save(pickle, '.pt');

const storagePid = (cls: string, key: string, numel: number) =>
  pk('(', X('storage'), 'c', `torch\n${cls}\n`, X(key), X('cpu'), 'J', u32(numel), 't', 'Q');
const rebuild = (pid: Uint8Array, offset: Part[], size: number[], stride: number[]) =>
  pk('c', 'torch._utils\n_rebuild_tensor_v2\n', '(', pid, ...offset,
    '(', ...size.flatMap((s) => ['K', s]), 't', '(', ...stride.flatMap((s) => ['K', s]), 't',
    0x89, 'c', 'collections\nOrderedDict\n', ')', 'R', 't', 'R');

/** A valid zip whose storage 0 holds four floats, with the tensor described by `t`. */
const withTensor = (t: Tensor) => () => {
  const p = join(tmp, `case${fileNo++}.bin`);
  writeTorchZip(p, { t }, { top: 'case' });
  return p;
};
const four = () => new Storage('Float', new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));

// --- the corpus ------------------------------------------------------------------------------

interface Case {
  make: () => string;
  /** Besides the file name, the message must contain these. */
  mentions?: string[];
}

const cases: Record<string, Case> = {};
const add = (name: string, make: () => string, mentions?: string[]) => {
  cases[name] = { make, mentions };
};

// Truncation anywhere loses the end records.
for (const at of [0, 1, 2, 4, 29, 64, 100, 1000, pkl.data + pkl.size, biggest.data + 10, L.cdOffset, L.cdOffset + 50, L.eocd64 + 10, L.locator, L.eocd, original.length - 1]) {
  add(`truncated at byte ${at}`, truncated(at));
}

// Bit flips.
add('flip: local header signature', flipped(0, 1));
add('flip: local header method', flipped(8, 3));
add('flip: local header name length', flipped(26, 2));
add('flip: local header extra length', flipped(28, 1));
add('flip: local header name', flipped(33, 0));
add('flip: data.pkl PROTO', flipped(pkl.data, 0));
add('flip: data.pkl middle', flipped(pkl.data + (pkl.size >> 1), 4));
add('flip: data.pkl STOP', flipped(pkl.data + pkl.size - 1, 0));
for (const s of [biggest, storages[0], storages[storages.length - 1]]) {
  add(`flip: data of ${s.name} (CRC)`, flipped(s.data + (s.size >> 1), 6));
}
add('flip: second record local signature', flipped(second.local + 2, 0));
add('flip: central signature', flipped(L.cdOffset + 1, 0));
add('flip: central method', flipped(L.cdOffset + 10, 0));
add('flip: central CRC', flipped(L.cdOffset + 16, 5));
add('flip: central compressed size', flipped(L.cdOffset + 20, 2));
add('flip: central size', flipped(L.cdOffset + 24, 2));
add('flip: central name length', flipped(L.cdOffset + 28, 0));
add('flip: central name', flipped(L.cdOffset + 46 + 15, 1));
add('flip: central local-header offset', flipped(L.entries[3].central + 42, 3));
add('flip: ZIP64 end signature', flipped(L.eocd64, 2));
add('flip: ZIP64 end entry count', flipped(L.eocd64 + 32, 6));
add('flip: ZIP64 end directory offset', flipped(L.eocd64 + 48, 1));
add('flip: ZIP64 locator offset', flipped(L.locator + 8, 4));
add('flip: end record signature', flipped(L.eocd + 3, 0));
add('flip: end record comment length', flipped(L.eocd + 20, 0));

// Lying directory fields.
add('lie: data.pkl sizes one byte longer', patched((b) => {
  b.writeUInt32LE(pkl.size + 1, pkl.central + 20);
  b.writeUInt32LE(pkl.size + 1, pkl.central + 24);
}));
add('lie: storage sizes run into the directory', patched((b) => {
  b.writeUInt32LE(0x7fffffff, biggest.central + 20);
  b.writeUInt32LE(0x7fffffff, biggest.central + 24);
}));
add('lie: local offset points at another record', patched((b) => b.writeUInt32LE(0, L.entries[5].central + 42)));
add('lie: local offset past the end', patched((b) => b.writeUInt32LE(original.length + 100, L.entries[5].central + 42)));
add('lie: directory offset past the end', patched((b) => b.writeBigUInt64LE(BigInt(original.length * 2), L.eocd64 + 48)));
add('lie: directory offset inside data', patched((b) => b.writeBigUInt64LE(BigInt(pkl.data), L.eocd64 + 48)));
add('lie: directory size too small', patched((b) => b.writeBigUInt64LE(40n, L.eocd64 + 40)));
add('lie: a billion entries', patched((b) => b.writeBigUInt64LE(1_000_000_000n, L.eocd64 + 32)));
add('lie: name length past the directory', patched((b) => b.writeUInt16LE(0xffff, L.entries[L.entries.length - 1].central + 28)));
add('lie: compressed entry (central method 8)', patched((b) => b.writeUInt16LE(8, biggest.central + 10)), ['method 8']);
add('lie: compressed entry (local method 8)', patched((b) => b.writeUInt16LE(8, biggest.local + 8)), ['compressed']);

// Missing or inconsistent records.
add('missing data.pkl', () => {
  const p = join(tmp, `case${fileNo++}.bin`);
  writeTorchZip(p, { w: f32([1], [1]) }, { top: 'm', omit: ['data.pkl'] });
  return p;
}, ['data.pkl']);
add('missing storage record', () => {
  const p = join(tmp, `case${fileNo++}.bin`);
  writeTorchZip(p, { w: f32([1], [1]) }, { top: 'm', omit: ['data/0'] });
  return p;
}, ['m/data/0']);
add('storage record shorter than its element count', () => {
  const p = join(tmp, `case${fileNo++}.bin`);
  writeTorchZip(p, { w: f32([1, 2], [2]) }, { top: 'm', omit: ['data/0'], extra: [{ name: 'data/0', data: new Uint8Array(4) }] });
  return p;
}, ['m/data/0', 'wrong size']);
add('storage too small: offset', withTensor(new Tensor(four(), 3, [2], [1])), ['"t"', 'storage too small']);
add('storage too small: stride', withTensor(new Tensor(four(), 0, [2, 2], [4, 1])), ['storage too small']);
add('storage too small: size', withTensor(new Tensor(four(), 0, [5], [1])), ['storage too small']);
add('storage too small: untyped bytes for float64', withTensor(new Tensor(new Storage('Untyped', new Uint8Array(12)), 1, [1], [1], 'float64')));
add('two tensors with one dotted name', () => {
  const p = join(tmp, `case${fileNo++}.bin`);
  writeTorchZip(p, { 'a.b': f32([1], [1]), a: { b: f32([2], [1]) } }, { top: 'm' });
  return p;
}, ['"a.b"']);

// Hostile pickles: every global, every route; each would create MARKER under CPython.
for (const global of Object.keys(EXPLOITS)) {
  for (const route of ['GLOBAL', 'STACK_GLOBAL', 'INST', 'OBJ'] as const) {
    add(`hostile ${global} via ${route}`, inZip(hostile(global, route)), [`refusing pickle global ${global}`]);
  }
}
add('hostile builtins.__import__ chain', inZip(importChain), ['refusing pickle global builtins.__import__']);
add('hostile Python 2 __builtin__.eval', inZip(pk(P2, 'c', '__builtin__\neval\n', '(', EXPLOITS['builtins.eval'], 't', 'R', '.')), [
  'refusing pickle global __builtin__.eval',
]);
add('hostile global after a valid tensor', inZip(pk(P2, '}', '(', X('w'), rebuild(storagePid('FloatStorage', '0', 2), ['K', 0], [2], [1]),
  X('x'), 'c', 'os\nsystem\n', '(', EXPLOITS['os.system'], 't', 'R', 'u', '.')), ['refusing pickle global os.system']);
add('hostile os.system as a legacy file', asLegacy(hostile('os.system', 'GLOBAL')), ['refusing pickle global os.system']);
add('hostile builtins.exec as a legacy file via STACK_GLOBAL', asLegacy(hostile('builtins.exec', 'STACK_GLOBAL')), ['refusing pickle global builtins.exec']);
for (const g of ['importlib.import_module', 'pickle.loads', 'sys.modules', 'shutil.rmtree', 'webbrowser.open', 'builtins.getattr', 'torch.load']) {
  const [mod, name] = [g.slice(0, g.lastIndexOf('.')), g.slice(g.lastIndexOf('.') + 1)];
  add(`hostile ${g} reference`, inZip(pk(P2, 'c', `${mod}\n${name}\n`, '.')), [`refusing pickle global ${g}`]);
}

// VM abuse.
add('100k nested MARKs', inZip(pk(P2, '('.repeat(100_000), ')', '.')), ['nested MARKs']);
add('100k nested lists', inZip(pk(P2, ']'.repeat(100_000), 'a'.repeat(99_999), '.')), ['nested deeper']);
add('100k nested MARK/EMPTY_LIST pairs', inZip(pk(P2, '(]'.repeat(100_000), '.')), ['nested MARKs']);
add('BINUNICODE claiming 4 GiB', inZip(pk(P2, 'X', [0xff, 0xff, 0xff, 0xff], 'abc', '.')), ['claims 4294967295 bytes']);
add('BINBYTES claiming 4 GiB', inZip(pk(P2, 'B', [0xf0, 0xff, 0xff, 0xff], 'abc', '.')), ['claims']);
add('BINUNICODE8 claiming 2^62 bytes', inZip(pk(P2, 0x8d, [0, 0, 0, 0, 0, 0, 0, 0x40], 'abc', '.')), ['claims']);
add('SHORT_BINUNICODE past the end', inZip(pk(P2, 0x8c, 200, 'abc')), ['claims 200 bytes']);
add('LONG4 with a 2 GiB length', inZip(pk(P2, 0x8b, [0xff, 0xff, 0xff, 0x7f], 1, 2, '.')), ['integer of 2147483647 bytes']);
add('LONG4 with a negative length', inZip(pk(P2, 0x8b, [0xff, 0xff, 0xff, 0xff], '.')), ['negative length']);
add('memo miss (BINGET)', inZip(pk(P2, 'h', 5, '.')), ['memo miss']);
add('memo miss (LONG_BINGET)', inZip(pk(P2, 'K', 1, 'q', 0, 'j', u32(70000), '.')), ['memo miss']);
add('stack underflow (APPEND on nothing)', inZip(pk(P2, 'a', '.')), ['stack underflow']);
add('stack underflow (TUPLE2 of one)', inZip(pk(P2, 'K', 1, 0x86, '.')), ['stack underflow']);
add('stack underflow across a MARK', inZip(pk(P2, ']', '(', 'K', 1, 'a', 'a', '.')), ['stack underflow']);
add('unknown opcode 0xff', inZip(pk(P2, 0xff, '.')), ['unsupported pickle opcode 0xff']);
add('text INT opcode', inZip(pk(P2, 'I01\n', '.')), ['unsupported pickle opcode 0x49']);
add('out-of-band buffer (NEXT_BUFFER)', inZip(pk(0x80, 5, 0x97, '.')), ['unsupported pickle opcode 0x97']);
add('garbage after STOP', inZip(pk(P2, '}', '.', 'garbage')), ['after STOP']);
add('no STOP', inZip(pk(P2, '}')), ['before STOP']);
add('two values left at STOP', inZip(pk(P2, '}', '}', '.')), ['2 values on the stack']);
add('unclosed MARK at STOP', inZip(pk(P2, '}', '(', '.')), ['open MARK']);
add('BINPERSID with a non-storage tag', inZip(pk(P2, '(', X('module'), X('os'), 't', 'Q', '.')), ['not a storage record']);
add('BINPERSID with three fields', inZip(pk(P2, '(', X('storage'), X('x'), 'K', 1, 't', 'Q', '.')), ['3 fields']);
add('BINPERSID with a non-storage class', inZip(pk(P2, storagePid('Size', '0', 1).subarray(0), '.')), ['without a storage class']);
add('PERSID (text persistent id)', inZip(pk(P2, 'P0\n', '.')), ['PERSID']);
add('EXT1', inZip(pk(P2, 0x82, 1, '.')), ['EXT1']);
add('protocol 6', inZip(pk(0x80, 6, '}', '.')), ['protocol 6']);
add('REDUCE on a string', inZip(pk(P2, X('os.system'), ')', 'R', '.')), ['not an allowed global']);
add('NEWOBJ on a rebuild function', inZip(pk(P2, 'c', 'torch._utils\n_rebuild_tensor_v2\n', ')', 0x81, '.')), ['NEWOBJ']);
add('BUILD on a list', inZip(pk(P2, ']', '}', 'b', '.')), ['BUILD']);
add('APPEND on a tuple', inZip(pk(P2, ')', 'K', 1, 'a', '.')), ['not a list']);
add('unhashable dict key', inZip(pk(P2, '}', ']', 'K', 1, 's', '.')), ['unhashable']);
add('a list that contains itself', inZip(pk(P2, ']', 'q', 0, 'h', 0, 'a', '.')), ['refers to itself']);
add('global named after Object.prototype (torch.constructor)', inZip(pk(P2, 'c', 'torch\nconstructor\n', '.')), ['refusing pickle global torch.constructor']);
add('module named after Object.prototype (constructor.x)', inZip(pk(P2, 'c', 'constructor\nx\n', '.')), ['refusing pickle global constructor.x']);
add('storage class named after Object.prototype', inZip(pk(P2, '(', X('storage'), 'c', 'torch\n__proto__\n', X('0'), X('cpu'), 'K', 1, 't', 'Q', '.')), [
  'refusing pickle global torch.__proto__',
]);
add('sparse tensor rebuild', inZip(pk(P2, 'c', 'torch._utils\n_rebuild_sparse_tensor\n', '.')), ['not supported', 'torch._utils._rebuild_sparse_tensor']);
add('quantized storage class', inZip(pk(P2, storagePid('QInt8Storage', '0', 1), '.')), ['quantized']);
add('negative tensor offset', inZip(pk(P2, '}', X('w'), rebuild(storagePid('FloatStorage', '0', 2), ['J', u32(-1 >>> 0)], [2], [1]), 's', '.')), [
  'storage offset',
]);
add('tensor from a non-storage', inZip(pk(P2, '}', X('w'), rebuild(X('fake'), ['K', 0], [1], [1]), 's', '.')), ['not a persistent storage']);
add('storage key missing from the zip', inZip(pk(P2, '}', X('w'), rebuild(storagePid('FloatStorage', '99', 2), ['K', 0], [2], [1]), 's', '.')), [
  'data/99',
]);

// Not torch at all.
add('empty file', () => save(new Uint8Array(0)), ['empty file']);
add('random bytes', () => save(Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)), ['not a torch checkpoint']);
add('a safetensors file', () => save(readFileSync(join(import.meta.dirname, '../../../baselines/bert/model.safetensors'))), ['not a torch checkpoint']);
add('a tar archive (very old torch)', () => {
  const b = Buffer.alloc(2048);
  b.write('storages', 0, 'latin1');
  b.write('ustar', 257, 'latin1');
  return save(b);
}, ['tar-format']);
add('a legacy stream with the wrong magic', asLegacy(pk(P2, 'K', 7, '.')), ['magic']);

/** Open and materialise everything, as a weight map would. */
function readAll(path: string): void {
  const ckpt = readTorchCheckpoint(path);
  for (const t of ckpt.tensors.values()) t.toFloat32();
}

describe('malformed and hostile torch files', () => {
  it('has a corpus of at least 60 cases and a pristine original', () => {
    expect(Object.keys(cases).length).toBeGreaterThanOrEqual(60);
    expect(() => readAll(BIN)).not.toThrow();
  });

  it.each(Object.entries(cases))('%s', (_name, c) => {
    const path = c.make();
    let err: unknown;
    const started = Date.now();
    try {
      readAll(path);
    } catch (e) {
      err = e;
    }
    expect(Date.now() - started).toBeLessThan(3000);
    expect(err).toBeInstanceOf(InputError);
    const message = (err as Error).message;
    expect(message).toContain(path);
    for (const m of c.mentions ?? []) expect(message).toContain(m);
    expect(existsSync(MARKER)).toBe(false);
  }, 5000);
});
