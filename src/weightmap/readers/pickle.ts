/**
 * A pickle virtual machine that never calls anything.
 *
 * Python's unpickler imports every GLOBAL and calls it on REDUCE, which is how a `.bin` runs
 * `os.system`. Here a GLOBAL is only a name: it must be on an allow-list (torch's own
 * `weights_only` list, FORMATS.md §5, plus what Megatron's `model_optim_rng.pt` needs), and
 * REDUCE/NEWOBJ/BUILD on an allowed name produce plain records (a tensor description, a dict,
 * an inert {module, name, args, state}). Anything else is an InputError naming the global.
 *
 * The VM is linear in the input and bounded: lengths are checked against the bytes left,
 * nesting, mark depth, stack, memo and integer sizes are capped, so hostile input fails fast.
 */
import type { DType } from '../checkpoint.ts';
import { InputError } from '../../errors.ts';

// ---------------------------------------------------------------------------------------------
// Values

/** A name from GLOBAL/STACK_GLOBAL/INST that passed the allow-list; never resolved to code. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An allowed class instance or call result kept as data: `argparse.Namespace`, numpy records, Megatron enums. */
export class PyObject {
  state: PyValue | undefined = undefined;
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: readonly PyValue[],
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

export class PySet {
  constructor(
    readonly items: PyValue[],
    readonly frozen: boolean,
  ) {}
}

/** torch's persistent id `('storage', <class>, key, location, numel[, view_metadata])`. */
export class PyStorage {
  constructor(
    /** e.g. `FloatStorage`, `UntypedStorage`. */
    readonly className: string,
    /** Element type of the class; `U8` for UntypedStorage (numel then counts bytes). */
    readonly dtype: DType,
    readonly key: string,
    /** Device it was saved from (`cpu`, `cuda:0`); irrelevant to the bytes. */
    readonly location: string,
    readonly numel: number,
    /** Legacy format only: this storage is `root[offset : offset + numel]` of the keyed root. */
    readonly view: { readonly key: string; readonly offset: number } | null,
  ) {}
}

/** What `torch._utils._rebuild_tensor_v2` would build: a view of a storage, described, not built. */
export class PyTensor {
  constructor(
    readonly storage: PyStorage,
    /** In elements of `dtype`. */
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly dtype: DType,
  ) {}
}

export type PyKey = PyValue;
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyKey, PyValue>
  | PySet
  | PyGlobal
  | PyObject
  | PyStorage
  | PyTensor;

/** Tuples are frozen arrays: indexable like lists, but APPEND on one is rejected. */
export function isTuple(v: PyValue): v is PyValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function toTuple(items: PyValue[]): PyValue[] {
  Object.freeze(items);
  return items;
}

// ---------------------------------------------------------------------------------------------
// Allow-list

/** Storage class name → element type (FORMATS.md §4). Quantized classes are refused separately. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  ComplexFloatStorage: 'C64',
  UntypedStorage: 'U8',
};

/** `torch.<name>` dtype globals → element type; names that have no DType here are refused when used. */
export const TORCH_DTYPES: Readonly<Record<string, DType | null>> = {
  float32: 'F32', float: 'F32', float64: 'F64', double: 'F64', float16: 'F16', half: 'F16', bfloat16: 'BF16',
  int64: 'I64', long: 'I64', int32: 'I32', int: 'I32', int16: 'I16', short: 'I16', int8: 'I8', uint8: 'U8',
  uint16: 'U16', uint32: 'U32', uint64: 'U64', bool: 'BOOL', complex64: 'C64', cfloat: 'C64',
  complex128: null, cdouble: null, complex32: null, chalf: null,
  float8_e4m3fn: 'F8_E4M3', float8_e5m2: 'F8_E5M2', float8_e4m3fnuz: 'F8_E4M3FNUZ', float8_e5m2fnuz: 'F8_E5M2FNUZ',
  float8_e8m0fnu: 'F8_E8M0',
};

const QUANTIZED = /^(Q(U)?Int\d+(x\d+)?Storage|q(u)?int\d+(x\d+)?)$/;

/** Globals that are data, never called: argument types and values. */
const INERT = new Set([
  'numpy.ndarray',
  'torch.Tensor',
  'torch.nn.parameter.Parameter',
]);

/** Table lookup that never reaches Object.prototype (`constructor`, `__proto__` are names a file can hold). */
export function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/** Python 2 module names that Python 3's unpickler maps (`fix_imports`) before lookup. */
const PY2_MODULES: Readonly<Record<string, string>> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

type Builder = (g: PyGlobal, args: PyValue[], vm: Vm) => PyValue;

function inert(g: PyGlobal, args: PyValue[]): PyObject {
  return new PyObject(g.module, g.name, toTuple(args));
}

/** Allowed callables (REDUCE, NEWOBJ, INST, OBJ) and the plain data each one yields instead of running. */
const CALLABLES: Readonly<Record<string, Builder>> = {
  'collections.OrderedDict': (_g, args, vm) => dictFrom(args, vm),
  'builtins.dict': (_g, args, vm) => dictFrom(args, vm),
  'torch._utils._rebuild_tensor': (_g, a, vm) => vm.tensor(a[0], a[1], a[2], a[3], null, a.length === 4),
  'torch._utils._rebuild_tensor_v2': (_g, a, vm) => vm.tensor(a[0], a[1], a[2], a[3], null, a.length === 6 || a.length === 7),
  'torch._utils._rebuild_tensor_v3': (_g, a, vm) => vm.tensor(a[0], a[1], a[2], a[3], a[6], a.length === 7 || a.length === 8),
  'torch._utils._rebuild_parameter': (_g, a, vm) => vm.parameter(a),
  'torch._utils._rebuild_parameter_with_state': (_g, a, vm) => vm.parameter(a),
  // Tensor subclasses and tensors with Python attributes: (func, type, args, state); interpret func, drop the rest.
  'torch._tensor._rebuild_from_type_v2': (_g, a, vm) => {
    if (!(a[0] instanceof PyGlobal) || !Array.isArray(a[2])) vm.fail('malformed _rebuild_from_type_v2 arguments');
    return vm.call(a[0] as PyGlobal, [...(a[2] as PyValue[])], 'REDUCE');
  },
  'torch.Size': (_g, a, vm) => {
    if (a.length !== 1 || !Array.isArray(a[0])) vm.fail('torch.Size expects one tuple');
    return toTuple([...(a[0] as PyValue[])]);
  },
  'torch.device': (_g, a, vm) => {
    if (typeof a[0] !== 'string') vm.fail('torch.device expects a string');
    return a.length > 1 && a[1] !== null ? `${a[0]}:${String(a[1])}` : (a[0] as string);
  },
  'builtins.set': (_g, a, vm) => new PySet(a.length ? [...vm.sequence(a[0])] : [], false),
  'builtins.frozenset': (_g, a, vm) => new PySet(a.length ? [...vm.sequence(a[0])] : [], true),
  'builtins.slice': inert,
  'builtins.complex': inert,
  'builtins.bytearray': (_g, a, vm) => (a.length === 0 ? new Uint8Array(0) : vm.bytesOf(a[0])),
  // Protocol 2 writes Python 3 bytes as _codecs.encode(str, 'latin1'): a pure function, done here on data.
  '_codecs.encode': (_g, a, vm) => {
    if (typeof a[0] !== 'string') vm.fail('_codecs.encode expects a string');
    const enc = a.length > 1 ? String(a[1]).toLowerCase() : 'utf-8';
    if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1') return latin1(a[0] as string, vm);
    if (enc === 'utf-8' || enc === 'utf8') return new TextEncoder().encode(a[0] as string);
    return vm.fail(`_codecs.encode with encoding ${JSON.stringify(enc)} is not supported`);
  },
  'argparse.Namespace': inert,
  // numpy RNG state in Megatron's rng_state: kept as records, summarised by the torch reader.
  'numpy.core.multiarray._reconstruct': inert,
  'numpy._core.multiarray._reconstruct': inert,
  'numpy.core.multiarray.scalar': inert,
  'numpy._core.multiarray.scalar': inert,
  'numpy.dtype': inert,
};

/** Classes that NEWOBJ/NEWOBJ_EX may instantiate (`cls.__new__(cls, *args)`). */
const NEWOBJ_CLASSES = new Set(['argparse.Namespace', 'collections.OrderedDict', 'builtins.set', 'builtins.frozenset', 'torch.Size']);

function isMegatron(module: string): boolean {
  return module === 'megatron' || module.startsWith('megatron.');
}

/** Throws unless (module, name) may appear in a checkpoint. Returns the global as an inert name. */
export function resolveGlobal(rawModule: string, name: string, fail: (m: string, e?: string, a?: string) => never): PyGlobal {
  const module = own(PY2_MODULES, rawModule) ?? rawModule;
  const q = `${module}.${name}`;
  if (module === 'torch' || module === 'torch.cuda' || module === 'torch.storage') {
    if (QUANTIZED.test(name)) fail(`quantized tensors are not supported (pickle global ${rawModule}.${name})`);
    if (own(STORAGE_DTYPES, name) || name === 'Size' || name === 'device' || name === 'Tensor') return new PyGlobal(module, name);
    if (module === 'torch' && own(TORCH_DTYPES, name) !== undefined) return new PyGlobal(module, name);
    if (name === 'ComplexDoubleStorage') fail(`complex128 storages are not supported (pickle global ${rawModule}.${name})`);
  }
  if (own(CALLABLES, q) || INERT.has(q) || isMegatron(module)) return new PyGlobal(module, name);
  if (module === 'torch._utils' && name.startsWith('_rebuild_')) {
    fail(`tensor kind of ${q} (sparse, quantized, meta, NestedTensor…) is not supported; refusing pickle global ${rawModule}.${name}`);
  }
  return fail(`refusing pickle global ${rawModule}.${name}`, 'a global on the checkpoint allow-list', `${rawModule}.${name}`);
}

function dictFrom(args: PyValue[], vm: Vm): Map<PyKey, PyValue> {
  const m = new Map<PyKey, PyValue>();
  if (args.length === 0) return m;
  for (const pair of vm.sequence(args[0])) {
    if (!Array.isArray(pair) || pair.length !== 2) vm.fail('OrderedDict expects (key, value) pairs');
    m.set(dictKey(pair[0], vm), pair[1]);
    vm.nest(m, pair[1]);
  }
  return m;
}

function latin1(s: string, vm: Vm): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) vm.fail('_codecs.encode: character outside latin-1');
    out[i] = c;
  }
  return out;
}

/** Python dict keys compare by value; JS Maps by identity, so keep only value-like keys. */
function dictKey(k: PyValue, vm: Vm): PyKey {
  if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean' || typeof k === 'bigint') return k;
  if (isTuple(k) || k instanceof PyGlobal || k instanceof PyObject || (k instanceof PySet && k.frozen)) return k;
  return vm.fail('unhashable dict key');
}

// ---------------------------------------------------------------------------------------------
// Limits

export interface PickleLimits {
  /** Nesting of containers inside containers. */
  maxDepth: number;
  /** Open MARKs at once. */
  maxMarks: number;
  /** Values on the stack at once, and memo entries. */
  maxStack: number;
  /** Opcodes executed. */
  maxOps: number;
  /** Bytes of one LONG1/LONG4 integer. */
  maxLongBytes: number;
}

export const DEFAULT_LIMITS: PickleLimits = {
  maxDepth: 1000,
  maxMarks: 1000,
  maxStack: 10_000_000,
  maxOps: 100_000_000,
  maxLongBytes: 1024,
};

export interface UnpickleOptions {
  /** File named in errors. */
  file: string;
  /** Where in the file, for messages (`pytorch_model/data.pkl`). */
  where?: string;
  /** Byte to start at (legacy files hold several pickles back to back). */
  start?: number;
  /** Require the pickle to end exactly at the end of `bytes` (no bytes after STOP). */
  exact?: boolean;
  limits?: Partial<PickleLimits>;
}

export interface UnpickleResult {
  value: PyValue;
  /** Byte after STOP. */
  end: number;
  /** Every storage a persistent id named, by key (first record; conflicting records are refused). */
  storages: Map<string, PyStorage>;
}

export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  return new Vm(bytes, options).run();
}

// ---------------------------------------------------------------------------------------------
// The machine

const MARK = 0x28, STOP = 0x2e, POP = 0x30, POP_MARK = 0x31, DUP = 0x32, BININT = 0x4a, BININT1 = 0x4b,
  BININT2 = 0x4d, NONE = 0x4e, PERSID = 0x50, BINPERSID = 0x51, REDUCE = 0x52, BINSTRING = 0x54,
  SHORT_BINSTRING = 0x55, BINUNICODE = 0x58, APPEND = 0x61, BUILD = 0x62, GLOBAL = 0x63, DICT = 0x64,
  EMPTY_DICT = 0x7d, APPENDS = 0x65, BINGET = 0x68, INST = 0x69, LONG_BINGET = 0x6a, LIST = 0x6c,
  EMPTY_LIST = 0x5d, OBJ = 0x6f, BINPUT = 0x71, LONG_BINPUT = 0x72, SETITEM = 0x73, TUPLE = 0x74,
  EMPTY_TUPLE = 0x29, SETITEMS = 0x75, BINFLOAT = 0x47, PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82,
  EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89,
  LONG1 = 0x8a, LONG4 = 0x8b, BINBYTES = 0x42, SHORT_BINBYTES = 0x43, SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91,
  NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96;

const utf8 = new TextDecoder('utf-8');

class Vm {
  private readonly file: string;
  private readonly where: string;
  private readonly limits: PickleLimits;
  private readonly view: DataView;
  private pos: number;
  private opStart = 0;
  private readonly stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly depth = new WeakMap<object, number>();
  private readonly storages = new Map<string, PyStorage>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.file = options.file;
    this.where = options.where ?? 'pickle';
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = options.start ?? 0;
  }

  fail(message: string, expected?: string, actual?: string): never {
    throw new InputError(`${this.where} at byte ${this.opStart}: ${message}`, { file: this.file, expected, actual });
  }

  run(): UnpickleResult {
    const { bytes } = this;
    let ops = 0;
    for (;;) {
      if (++ops > this.limits.maxOps) this.fail(`more than ${this.limits.maxOps} opcodes`);
      this.opStart = this.pos;
      if (this.pos >= bytes.length) this.fail('pickle ends before STOP (truncated)');
      const op = bytes[this.pos++];
      switch (op) {
        case PROTO: {
          const v = this.u8();
          if (v > 5) this.fail(`unsupported pickle protocol ${v}`, '<= 5', `${v}`);
          break;
        }
        case FRAME: // a buffering hint: the length is checked, the framed bytes are ordinary opcodes
          this.len64();
          break;
        case STOP: {
          if (this.marks.length) this.fail(`STOP with ${this.marks.length} open MARK(s)`);
          if (this.stack.length !== 1) this.fail(`STOP with ${this.stack.length} values on the stack`, '1', `${this.stack.length}`);
          if (this.options.exact && this.pos !== bytes.length) {
            this.fail(`${bytes.length - this.pos} unexpected bytes after STOP`);
          }
          return { value: this.stack[0], end: this.pos, storages: this.storages };
        }
        case MARK:
          if (this.marks.length >= this.limits.maxMarks) this.fail(`more than ${this.limits.maxMarks} nested MARKs`);
          this.marks.push(this.stack.length);
          break;
        case POP:
          this.pop();
          break;
        case POP_MARK:
          this.popMark();
          break;
        case DUP:
          this.push(this.top());
          break;
        case NONE:
          this.push(null);
          break;
        case NEWTRUE:
          this.push(true);
          break;
        case NEWFALSE:
          this.push(false);
          break;
        case BININT:
          this.push(this.view.getInt32(this.advance(4), true));
          break;
        case BININT1:
          this.push(this.u8());
          break;
        case BININT2:
          this.push(this.view.getUint16(this.advance(2), true));
          break;
        case LONG1:
          this.push(this.long(this.u8()));
          break;
        case LONG4: {
          const n = this.view.getInt32(this.advance(4), true);
          if (n < 0) this.fail('LONG4 with a negative length');
          this.push(this.long(n));
          break;
        }
        case BINFLOAT:
          this.push(this.view.getFloat64(this.advance(8), false));
          break;
        case BINUNICODE:
          this.push(utf8.decode(this.take(this.len32())));
          break;
        case SHORT_BINUNICODE:
          this.push(utf8.decode(this.take(this.u8())));
          break;
        case BINUNICODE8:
          this.push(utf8.decode(this.take(this.len64())));
          break;
        // Python 2 str; torch.load decodes it as UTF-8 (its default `encoding`).
        case BINSTRING:
          this.push(utf8.decode(this.take(this.len32())));
          break;
        case SHORT_BINSTRING:
          this.push(utf8.decode(this.take(this.u8())));
          break;
        case BINBYTES:
          this.push(this.take(this.len32()).slice());
          break;
        case SHORT_BINBYTES:
          this.push(this.take(this.u8()).slice());
          break;
        case BINBYTES8:
        case BYTEARRAY8:
          this.push(this.take(this.len64()).slice());
          break;
        case EMPTY_LIST:
          this.push(this.container([]));
          break;
        case EMPTY_TUPLE:
          this.push(toTuple([]));
          break;
        case EMPTY_DICT:
          this.push(this.container(new Map()));
          break;
        case EMPTY_SET:
          this.push(this.container(new PySet([], false)));
          break;
        case TUPLE1:
        case TUPLE2:
        case TUPLE3: {
          const n = op - TUPLE1 + 1;
          const items = this.popN(n);
          this.push(this.tuple(items));
          break;
        }
        case TUPLE:
          this.push(this.tuple(this.popMark()));
          break;
        case LIST: {
          const items = this.popMark();
          const list = this.container<PyValue[]>([]);
          for (const v of items) this.nest(list, v);
          list.push(...items);
          this.push(list);
          break;
        }
        case DICT: {
          const items = this.popMark();
          const d = this.container(new Map<PyKey, PyValue>());
          this.setItems(d, items);
          this.push(d);
          break;
        }
        case FROZENSET: {
          const items = this.popMark();
          const s = this.container(new PySet([], true));
          for (const v of items) this.nest(s, v);
          s.items.push(...items);
          this.push(s);
          break;
        }
        case APPEND: {
          const v = this.pop();
          this.appendTo(this.top(), [v]);
          break;
        }
        case APPENDS: {
          const items = this.popMark();
          this.appendTo(this.top(), items);
          break;
        }
        case SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case SETITEMS: {
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof PySet) || s.frozen) this.fail('ADDITEMS on something that is not a set');
          for (const v of items) this.nest(s, v);
          s.items.push(...items);
          break;
        }
        case BINGET:
          this.push(this.get(this.u8()));
          break;
        case LONG_BINGET:
          this.push(this.get(this.view.getUint32(this.advance(4), true)));
          break;
        case BINPUT:
          this.put(this.u8());
          break;
        case LONG_BINPUT:
          this.put(this.view.getUint32(this.advance(4), true));
          break;
        case MEMOIZE:
          this.put(this.memo.size);
          break;
        case GLOBAL: {
          const module = this.line();
          const name = this.line();
          this.push(resolveGlobal(module, name, (m, e, a) => this.fail(m, e, a)));
          break;
        }
        case STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.push(resolveGlobal(module as string, name as string, (m, e, a) => this.fail(m, e, a)));
          break;
        }
        case INST: {
          const module = this.line();
          const name = this.line();
          const g = resolveGlobal(module, name, (m, e, a) => this.fail(m, e, a));
          this.push(this.call(g, this.popMark(), 'INST'));
          break;
        }
        case OBJ: {
          const items = this.popMark();
          if (items.length === 0) this.fail('OBJ without a class');
          this.push(this.call(items[0], items.slice(1), 'OBJ'));
          break;
        }
        case REDUCE: {
          const args = this.pop();
          const callable = this.pop();
          if (!Array.isArray(args)) this.fail('REDUCE arguments are not a tuple');
          this.push(this.call(callable, [...(args as PyValue[])], 'REDUCE'));
          break;
        }
        case NEWOBJ: {
          const args = this.pop();
          const cls = this.pop();
          if (!Array.isArray(args)) this.fail('NEWOBJ arguments are not a tuple');
          this.push(this.call(cls, [...(args as PyValue[])], 'NEWOBJ'));
          break;
        }
        case NEWOBJ_EX: {
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!Array.isArray(args)) this.fail('NEWOBJ_EX arguments are not a tuple');
          if (!(kwargs instanceof Map) || kwargs.size) this.fail('NEWOBJ_EX with keyword arguments is not supported');
          this.push(this.call(cls, [...(args as PyValue[])], 'NEWOBJ'));
          break;
        }
        case BUILD: {
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case BINPERSID:
          this.push(this.persistent(this.pop()));
          break;
        case PERSID:
          this.fail('text persistent ids (PERSID) are not used by torch; refusing');
          break;
        case EXT1:
        case EXT2:
        case EXT4:
          this.fail('extension-registry opcodes (EXT1/2/4) are refused: they resolve to arbitrary globals');
          break;
        default:
          this.fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }

  // --- byte access --------------------------------------------------------------------------

  private advance(n: number): number {
    if (this.pos + n > this.bytes.length) this.fail(`needs ${n} bytes, ${this.bytes.length - this.pos} left (truncated)`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u8(): number {
    return this.bytes[this.advance(1)];
  }

  private len32(): number {
    return this.view.getUint32(this.advance(4), true);
  }

  private len64(): number {
    const n = this.view.getBigUint64(this.advance(8), true);
    const left = this.bytes.length - this.pos;
    if (n > BigInt(left)) this.fail(`claims ${n} bytes, only ${left} left`);
    return Number(n);
  }

  /** `n` bytes as a view (callers copy what they keep); a claimed length past the end is refused. */
  private take(n: number): Uint8Array {
    const left = this.bytes.length - this.pos;
    if (n > left) this.fail(`claims ${n} bytes, only ${left} left`);
    return this.bytes.subarray(this.advance(n), this.pos);
  }

  /** GLOBAL/INST operands: a newline-terminated name, at most 1 KiB. */
  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 1024) this.fail('GLOBAL name is not newline-terminated');
    const s = utf8.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  /** Two's-complement little-endian integer; a plain number when exact, else a BigInt. */
  private long(n: number): number | bigint {
    if (n > this.limits.maxLongBytes) this.fail(`integer of ${n} bytes exceeds ${this.limits.maxLongBytes}`);
    const b = this.take(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  // --- stack, marks, memo -------------------------------------------------------------------

  private push(v: PyValue): void {
    if (this.stack.length >= this.limits.maxStack) this.fail(`more than ${this.limits.maxStack} values on the stack`);
    this.stack.push(v);
  }

  private fence(): number {
    return this.marks.length ? this.marks[this.marks.length - 1] : 0;
  }

  private pop(): PyValue {
    if (this.stack.length <= this.fence()) this.fail('stack underflow');
    return this.stack.pop() as PyValue;
  }

  private popN(n: number): PyValue[] {
    if (this.stack.length - n < this.fence()) this.fail('stack underflow');
    return this.stack.splice(this.stack.length - n, n);
  }

  private top(): PyValue {
    if (this.stack.length <= this.fence()) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail('no MARK to pop to');
    return this.stack.splice(m as number);
  }

  private get(i: number): PyValue {
    if (!this.memo.has(i)) this.fail(`memo miss: no value stored at ${i}`);
    return this.memo.get(i) as PyValue;
  }

  private put(i: number): void {
    if (this.memo.size >= this.limits.maxStack && !this.memo.has(i)) this.fail('memo too large');
    this.memo.set(i, this.top());
  }

  // --- containers and nesting ---------------------------------------------------------------

  private container<T extends object>(c: T): T {
    this.depth.set(c, 1);
    return c;
  }

  private depthOf(v: PyValue): number {
    return v !== null && typeof v === 'object' ? (this.depth.get(v) ?? 1) : 0;
  }

  /** Records that `child` now sits inside `parent`; refuses nesting beyond the limit. */
  nest(parent: object, child: PyValue): void {
    const d = this.depthOf(child) + 1;
    if (d > (this.depth.get(parent) ?? 1)) {
      if (d > this.limits.maxDepth) this.fail(`containers nested deeper than ${this.limits.maxDepth}`);
      this.depth.set(parent, d);
    }
  }

  private tuple(items: PyValue[]): PyValue[] {
    const t = this.container(items);
    for (const v of items) this.nest(t, v);
    return toTuple(t);
  }

  private appendTo(target: PyValue, items: PyValue[]): void {
    if (!Array.isArray(target) || Object.isFrozen(target)) this.fail('APPEND/APPENDS on something that is not a list');
    const list = target as PyValue[];
    for (const v of items) {
      this.nest(list, v);
      list.push(v);
    }
  }

  private setItems(target: PyValue, items: PyValue[]): void {
    if (!(target instanceof Map)) this.fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2) this.fail('SETITEMS with an odd number of values');
    const d = target as Map<PyKey, PyValue>;
    for (let i = 0; i < items.length; i += 2) {
      this.nest(d, items[i + 1]);
      d.set(dictKey(items[i], this), items[i + 1]);
    }
  }

  sequence(v: PyValue): PyValue[] {
    if (Array.isArray(v)) return v;
    if (v instanceof PySet) return v.items;
    return this.fail('expected a list or tuple');
  }

  bytesOf(v: PyValue): Uint8Array {
    if (v instanceof Uint8Array) return v;
    return this.fail('expected bytes');
  }

  // --- calls (never executed) ---------------------------------------------------------------

  call(callable: PyValue, args: PyValue[], how: 'REDUCE' | 'NEWOBJ' | 'INST' | 'OBJ'): PyValue {
    if (!(callable instanceof PyGlobal)) return this.fail(`${how} on a value that is not an allowed global`);
    const q = callable.qualified;
    let out: PyValue;
    if (isMegatron(callable.module)) {
      out = inert(callable, args); // Megatron enums: ModelType(1) etc., kept as {module, name, args}
    } else if (how === 'NEWOBJ' && !NEWOBJ_CLASSES.has(q)) {
      return this.fail(`NEWOBJ on ${q} is not allowed`);
    } else {
      const builder = own(CALLABLES, q);
      if (!builder) return this.fail(`${q} may appear in a checkpoint but is not callable`);
      out = builder(callable, args, this);
    }
    if (out instanceof PyObject || out instanceof PySet) {
      this.depth.set(out, 1);
      for (const a of out instanceof PySet ? out.items : args) this.nest(out, a);
    }
    return out;
  }

  private build(target: PyValue, state: PyValue): void {
    if (target instanceof PyObject) {
      this.nest(target, state);
      target.state = state;
    } else if (target instanceof Map || target instanceof PyTensor) {
      // OrderedDict `_metadata` (module versions) and Parameter state: not part of the values.
    } else {
      this.fail('BUILD on a value that cannot take state');
    }
  }

  private persistent(pid: PyValue): PyStorage {
    if (!Array.isArray(pid) || pid[0] !== 'storage') {
      return this.fail(`persistent id is not a storage record`, "('storage', …)", describe(pid));
    }
    if (pid.length !== 5 && pid.length !== 6) this.fail(`storage persistent id has ${pid.length} fields`, '5 (zip) or 6 (legacy)', `${pid.length}`);
    const [, cls, key, location, numel, viewMeta] = pid;
    if (!(cls instanceof PyGlobal) || !own(STORAGE_DTYPES, cls.name)) this.fail('storage persistent id without a storage class');
    if (typeof key !== 'string' || typeof location !== 'string') this.fail('storage persistent id with a non-string key or location');
    if (!isCount(numel)) this.fail('storage persistent id with a bad element count', 'a non-negative integer', describe(numel));
    const g = cls as PyGlobal;
    let view: PyStorage['view'] = null;
    let size = numel as number;
    if (viewMeta !== undefined && viewMeta !== null) {
      // Legacy storage views: (view_key, offset, view_size) into the keyed root storage.
      if (!Array.isArray(viewMeta) || viewMeta.length !== 3 || typeof viewMeta[0] !== 'string' || !isCount(viewMeta[1]) || !isCount(viewMeta[2])) {
        this.fail('malformed storage view metadata');
      }
      const [, off, vsize] = viewMeta as [string, number, number];
      if (off + vsize > size) this.fail('storage view runs past its root storage', `<= ${size}`, `${off}+${vsize}`);
      view = { key: key as string, offset: off };
      size = vsize;
    }
    const rec = new PyStorage(g.name, own(STORAGE_DTYPES, g.name)!, key as string, location as string, numel as number, null);
    const prev = this.storages.get(rec.key);
    if (!prev) this.storages.set(rec.key, rec);
    else if (prev.className !== rec.className || prev.numel !== rec.numel) {
      this.fail(`storage ${JSON.stringify(rec.key)} is described twice differently`, `${prev.className}[${prev.numel}]`, `${rec.className}[${rec.numel}]`);
    }
    return view ? new PyStorage(g.name, rec.dtype, rec.key, rec.location, size, view) : rec;
  }

  /** `_rebuild_tensor*` arguments → a tensor description; bounds are checked against the bytes later. */
  tensor(storage: PyValue, offset: PyValue, size: PyValue, stride: PyValue, dtypeArg: PyValue, arityOk: boolean): PyTensor {
    if (!arityOk) this.fail('_rebuild_tensor with an unexpected number of arguments');
    if (!(storage instanceof PyStorage)) this.fail('tensor storage is not a persistent storage record');
    if (!isCount(offset)) this.fail('tensor storage offset is not a non-negative integer', 'int >= 0', describe(offset));
    const shape = this.ints(size, 'size');
    const strides = this.ints(stride, 'stride');
    if (shape.length !== strides.length) this.fail('tensor size and stride differ in rank', `${shape.length}`, `${strides.length}`);
    const st = storage as PyStorage;
    let dtype = st.dtype;
    if (dtypeArg !== null) {
      if (!(dtypeArg instanceof PyGlobal) || dtypeArg.module !== 'torch' || own(TORCH_DTYPES, dtypeArg.name) === undefined) {
        this.fail('_rebuild_tensor_v3 dtype is not a torch dtype');
      }
      const d = own(TORCH_DTYPES, (dtypeArg as PyGlobal).name);
      if (!d) this.fail(`tensors of torch.${(dtypeArg as PyGlobal).name} are not supported`);
      dtype = d as DType;
    }
    return new PyTensor(st, offset as number, shape, strides, dtype);
  }

  parameter(a: PyValue[]): PyTensor {
    if (!(a[0] instanceof PyTensor)) this.fail('_rebuild_parameter of something that is not a tensor');
    return a[0] as PyTensor;
  }

  private ints(v: PyValue, what: string): number[] {
    if (!Array.isArray(v)) this.fail(`tensor ${what} is not a tuple`);
    const out: number[] = [];
    for (const x of v as PyValue[]) {
      if (!isCount(x)) this.fail(`tensor ${what} has an entry that is not a non-negative integer`, 'int >= 0', describe(x));
      out.push(x as number);
    }
    return out;
  }
}

function isCount(v: PyValue | undefined): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function describe(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return `${isTuple(v) ? 'tuple' : 'list'} of ${v.length} starting ${describe(v[0])}`;
  if (v instanceof Uint8Array) return `bytes[${v.length}]`;
  if (v instanceof Map) return `dict of ${v.size}`;
  return v.constructor.name;
}
