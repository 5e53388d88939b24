/**
 * The pickle VM on hand-assembled opcodes. Every expected value is worked out here from the
 * pickle format (Python's `Lib/pickletools.py` documents each opcode); nothing is copied from
 * the VM's own output.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { isTuple, PyGlobal, PyObject, PySet, PyTensor, unpickle, type PyValue } from '../../../src/weightmap/readers/pickle.ts';
import { catchError } from '../../support/catch-error.ts';

type Part = number | string | ArrayLike<number>;
/** Opcode assembly: numbers are single bytes, strings their UTF-8 bytes, arrays raw bytes. */
function pk(...parts: Part[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') out.push(...new TextEncoder().encode(p));
    else out.push(...Array.from(p));
  }
  return Uint8Array.from(out);
}
const u32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const u64 = (n: number) => [...u32(n), 0, 0, 0, 0];
const unicode = (s: string) => {
  const b = new TextEncoder().encode(s);
  return pk('X', u32(b.length), b);
};
const P2 = [0x80, 2];
const load = (bytes: Uint8Array) => unpickle(bytes, { file: 'test.pkl' }).value;

describe('scalars', () => {
  it('decodes every integer opcode, BigInt beyond 2^53', () => {
    const v = load(
      pk(P2, '(',
        'K', 5, // BININT1
        'M', [0x00, 0x01], // BININT2 = 256
        'J', [0xff, 0xff, 0xff, 0xff], // BININT = -1
        0x8a, 0, // LONG1 of 0 bytes = 0
        0x8a, 1, 0xff, // LONG1 = -1
        0x8a, 2, [0x00, 0x80], // LONG1 = -32768
        0x8a, 7, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f], // 2^53 - 1
        0x8a, 8, [0x01, 0, 0, 0, 0, 0, 0x20, 0], // 2^53 + 1
        0x8a, 9, [0, 0, 0, 0, 0, 0, 0, 0, 1], // 2^64
        0x8b, u32(2), [0x00, 0xff], // LONG4 = -256
        't', '.'),
    );
    expect(v).toEqual([5, 256, -1, 0, -1, -32768, 2 ** 53 - 1, 2n ** 53n + 1n, 2n ** 64n, -256]);
  });

  it('decodes BINFLOAT big-endian, keeping -0', () => {
    const v = load(pk(P2, 'G', [0x3f, 0xf8, 0, 0, 0, 0, 0, 0], 'G', [0x80, 0, 0, 0, 0, 0, 0, 0], 0x86, '.')) as number[];
    expect(v[0]).toBe(1.5);
    expect(Object.is(v[1], -0)).toBe(true);
  });

  it('decodes None and booleans', () => {
    expect(load(pk(P2, 'N', 0x88, 0x89, 0x87, '.'))).toEqual([null, true, false]);
  });

  it('decodes every string and bytes opcode', () => {
    const v = load(
      pk(P2, '(',
        'X', u32(6), 'héllo', // BINUNICODE, é is two bytes
        0x8c, 2, 'ab', // SHORT_BINUNICODE
        0x8d, u64(1), 'c', // BINUNICODE8
        'U', 2, 'de', // SHORT_BINSTRING (Python 2 str)
        'T', u32(1), 'f', // BINSTRING
        'C', 2, [0, 255], // SHORT_BINBYTES
        'B', u32(1), [7], // BINBYTES
        0x8e, u64(2), [1, 2], // BINBYTES8
        't', '.'),
    );
    expect(v).toEqual(['héllo', 'ab', 'c', 'de', 'f', new Uint8Array([0, 255]), new Uint8Array([7]), new Uint8Array([1, 2])]);
  });
});

describe('containers', () => {
  it('builds lists, tuples, dicts and sets', () => {
    const v = load(
      pk(P2, '(',
        ']', '(', 'K', 1, 'K', 2, 'e', // EMPTY_LIST + APPENDS
        ']', 'K', 3, 'a', // APPEND
        ')', // EMPTY_TUPLE
        'K', 4, 0x85, // TUPLE1
        '}', '(', unicode('a'), 'K', 1, unicode('b'), 'K', 2, 'u', // EMPTY_DICT + SETITEMS
        '}', unicode('c'), 'K', 3, 's', // SETITEM
        '(', 'K', 1, 'K', 2, 'l', // LIST
        '(', unicode('d'), 'K', 4, 'd', // DICT
        0x8f, '(', 'K', 5, 0x90, // EMPTY_SET + ADDITEMS
        '(', 'K', 6, 0x91, // FROZENSET
        't', '.'),
    ) as PyValue[];
    expect(v[0]).toEqual([1, 2]);
    expect(isTuple(v[0])).toBe(false);
    expect(v[1]).toEqual([3]);
    expect(isTuple(v[2]) && (v[2] as PyValue[]).length === 0).toBe(true);
    expect(isTuple(v[3])).toBe(true);
    expect(v[3]).toEqual([4]);
    expect(v[4]).toEqual(new Map([['a', 1], ['b', 2]]));
    expect(v[5]).toEqual(new Map([['c', 3]]));
    expect(v[6]).toEqual([1, 2]);
    expect(v[7]).toEqual(new Map([['d', 4]]));
    expect(v[8]).toEqual(new PySet([5], false));
    expect(v[9]).toEqual(new PySet([6], true));
  });

  it('shares memoised objects by identity (BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, MEMOIZE)', () => {
    const v = load(
      pk(P2, '(',
        ']', 'q', 0, 'h', 0, // the same list twice
        '}', 'r', u32(1000), 'j', u32(1000), // the same dict twice
        ')', 0x94, 'h', 2, // MEMOIZE stores at len(memo) = 2
        't', '.'),
    ) as PyValue[];
    expect(v[0]).toBe(v[1]);
    expect(v[2]).toBe(v[3]);
    expect(v[4]).toBe(v[5]);
  });

  it('handles POP, POP_MARK and DUP', () => {
    expect(load(pk(P2, 'K', 1, 'K', 2, '0', '(', 'K', 3, 'K', 4, '1', '2', 0x86, '.'))).toEqual([1, 1]);
  });
});

describe('protocol 4 framing and STACK_GLOBAL', () => {
  it('reads FRAME as a hint and resolves STACK_GLOBAL against the allow-list', () => {
    const body = pk(0x8c, 11, 'collections', 0x94, 0x8c, 11, 'OrderedDict', 0x94, 0x93, ')', 'R', '.');
    const v = load(pk(0x80, 4, 0x95, u64(body.length), body));
    expect(v).toEqual(new Map());
  });
});

describe('allowed globals become data, never calls', () => {
  it('argparse.Namespace via NEWOBJ + BUILD keeps its fields as state', () => {
    const v = load(pk(P2, 'c', 'argparse\nNamespace\n', ')', 0x81, '}', '(', unicode('lr'), 'G', [0x3f, 0xf8, 0, 0, 0, 0, 0, 0], 'u', 'b', '.'));
    expect(v).toBeInstanceOf(PyObject);
    expect((v as PyObject).qualified).toBe('argparse.Namespace');
    expect((v as PyObject).state).toEqual(new Map([['lr', 1.5]]));
  });

  it('a Megatron enum is an inert record of its value', () => {
    const v = load(pk(P2, 'c', 'megatron.model.enums\nModelType\n', 'K', 1, 0x85, 'R', '.')) as PyObject;
    expect([v.module, v.name, v.args]).toEqual(['megatron.model.enums', 'ModelType', [1]]);
  });

  it('a dtype global is a name', () => {
    const v = load(pk(P2, 'c', 'torch\nbfloat16\n', '.'));
    expect(v).toEqual(new PyGlobal('torch', 'bfloat16'));
  });

  it('_codecs.encode(str, "latin1") is the bytes Python 3 pickles with protocol 2', () => {
    expect(load(pk(P2, 'c', '_codecs\nencode\n', unicode('\u00ff\u0000A'), unicode('latin1'), 0x86, 'R', '.'))).toEqual(
      new Uint8Array([255, 0, 65]),
    );
  });

  it('torch.Size and Python 2 __builtin__.set map to tuples and sets', () => {
    const v = load(
      pk(P2, 'c', 'torch\nSize\n', 'K', 2, 'K', 3, 0x86, 0x85, 'R', 'c', '__builtin__\nset\n', ']', '(', 'K', 1, 'e', 0x85, 'R', 0x86, '.'),
    ) as PyValue[];
    expect(v[0]).toEqual([2, 3]);
    expect(v[1]).toEqual(new PySet([1], false));
  });
});

describe('tensors', () => {
  const rebuild = (fn: string, storageClass: string, extra: Part[] = []) =>
    pk(P2, 'c', `torch._utils\n${fn}\n`, '(',
      '(', unicode('storage'), 'c', `torch\n${storageClass}\n`, unicode('7'), unicode('cuda:1'), 'K', 6, 't', 'Q',
      'K', 1, // storage offset
      'K', 2, 'K', 2, 0x86, // size
      'K', 1, 'K', 2, 0x86, // stride (a transpose)
      0x89, 'c', 'collections\nOrderedDict\n', ')', 'R',
      ...extra,
      't', 'R', '.');

  it('_rebuild_tensor_v2 describes storage, offset, size, stride and dtype', () => {
    const t = load(rebuild('_rebuild_tensor_v2', 'HalfStorage')) as PyTensor;
    expect(t).toBeInstanceOf(PyTensor);
    expect([t.storage.key, t.storage.className, t.storage.dtype, t.storage.location, t.storage.numel]).toEqual([
      '7', 'HalfStorage', 'F16', 'cuda:1', 6,
    ]);
    expect([t.offset, t.shape, t.stride, t.dtype]).toEqual([1, [2, 2], [1, 2], 'F16']);
  });

  it('_rebuild_tensor_v3 takes the dtype argument over an untyped storage', () => {
    const t = load(rebuild('_rebuild_tensor_v3', 'UntypedStorage', ['c', 'torch\nfloat8_e5m2\n', 'N'])) as PyTensor;
    expect([t.storage.dtype, t.dtype]).toEqual(['U8', 'F8_E5M2']);
  });

  it('_rebuild_parameter yields the wrapped tensor', () => {
    const inner = rebuild('_rebuild_tensor_v2', 'FloatStorage');
    const v = load(
      pk(P2, 'c', 'torch._utils\n_rebuild_parameter\n', inner.subarray(2, inner.length - 1), 0x89, 'c', 'collections\nOrderedDict\n', ')', 'R', 0x87, 'R', '.'),
    );
    expect(v).toBeInstanceOf(PyTensor);
    expect((v as PyTensor).dtype).toBe('F32');
  });

  it('collects storages by key and refuses one key described as two storages', () => {
    const pid = (cls: string, n: number) => ['(', unicode('storage'), 'c', `torch\n${cls}\n`, unicode('0'), unicode('cpu'), 'K', n, 't', 'Q'];
    const r = unpickle(pk(P2, ...pid('FloatStorage', 4), ...pid('FloatStorage', 4), 0x86, '.'), { file: 't' });
    expect([...r.storages.keys()]).toEqual(['0']);
    expect(() => load(pk(P2, ...pid('FloatStorage', 4), ...pid('LongStorage', 4), 0x86, '.'))).toThrow(/described twice/);
  });
});

describe('stream position', () => {
  const two = pk(P2, 'K', 1, '.', P2, 'K', 2, '.');

  it('reads back-to-back pickles from a start offset and reports the end', () => {
    const a = unpickle(two, { file: 'f' });
    expect([a.value, a.end]).toEqual([1, 5]);
    const b = unpickle(two, { file: 'f', start: a.end });
    expect([b.value, b.end]).toEqual([2, 10]);
  });

  it('refuses bytes after STOP when the pickle must fill its record', () => {
    expect(() => unpickle(two, { file: 'f', exact: true })).toThrow(/5 unexpected bytes after STOP/);
  });
});

describe('refusals', () => {
  it('names the refused global and the file', () => {
    const e = catchError(() => unpickle(pk(P2, 'c', 'os\nsystem\n', unicode('true'), 0x85, 'R', '.'), { file: 'evil.pkl' }));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/^evil\.pkl: .*refusing pickle global os\.system/);
  });

  it.each([
    ['torch.load', 'torch\nload\n'],
    ['torch._utils._rebuild_device_tensor_from_numpy', 'torch._utils\n_rebuild_device_tensor_from_numpy\n'],
    ['builtins.getattr', 'builtins\ngetattr\n'],
    ['collections.namedtuple', 'collections\nnamedtuple\n'],
    ['numpy.load', 'numpy\nload\n'],
  ])('refuses %s although its module has allowed names', (name, line) => {
    expect(() => load(pk(P2, 'c', line, '.'))).toThrow(`refusing pickle global ${name}`);
  });

  it('refuses to call an allowed name that is not a constructor (torch.float32(...))', () => {
    expect(() => load(pk(P2, 'c', 'torch\nfloat32\n', ')', 'R', '.'))).toThrow(/not callable/);
  });

  it('applies the nesting limit it is given', () => {
    const nested = (n: number) => pk(P2, ...new Array(n).fill(']'), ...new Array(n - 1).fill('a'), '.');
    expect(() => unpickle(nested(3), { file: 'f', limits: { maxDepth: 3 } })).not.toThrow();
    expect(() => unpickle(nested(4), { file: 'f', limits: { maxDepth: 3 } })).toThrow(/nested deeper than 3/);
  });
});
