/**
 * ONNX initializers as a checkpoint. A hand-written protobuf wire decoder reads only
 * ModelProto.graph(7) → GraphProto.initializer(5) (TensorProto) and GraphProto.node(1), skipping
 * everything else by wire type. Every length and varint is bounds-checked against its enclosing
 * message, so a truncated or lying file is an InputError, never a RangeError or an endless loop.
 *
 * PyTorch 1.13's exporter deduplicates initializers with identical values and exposes the other
 * HF parameters as outputs of root-level `Identity` nodes (baselines/bert/README.md, "Initializers
 * and HF parameters"); those aliases are resolved so every HF parameter appears under its name.
 */
import { InputError } from '../../errors.ts';
import { shapeString, type Checkpoint, type DType, type TensorRef } from '../checkpoint.ts';
import { FIXED32, FIXED64, LEN, VARINT, Wire, type Fail } from './protobuf.ts';
import { bytesTensor, DTYPE_BITS, readWholeFile } from './safetensors.ts';

// onnx.proto TensorProto.DataType → safetensors dtype. Absent: STRING(8), COMPLEX128(15) and the
// 4-bit types (21-23), whose packing we have no file to test against.
const ONNX_DTYPES: Readonly<Record<number, DType>> = {
  1: 'F32', 2: 'U8', 3: 'I8', 4: 'U16', 5: 'I16', 6: 'I32', 7: 'I64', 9: 'BOOL', 10: 'F16', 11: 'F64',
  12: 'U32', 13: 'U64', 14: 'C64', 16: 'BF16', 17: 'F8_E4M3', 18: 'F8_E4M3FNUZ', 19: 'F8_E5M2', 20: 'F8_E5M2FNUZ',
};

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
}

export function readOnnxInitializers(path: string): Checkpoint {
  const buf = readWholeFile(path);
  const fail: Fail = (message, d = {}) => {
    throw new InputError(message, { file: path, ...d });
  };
  const model = readModel(new Wire(buf, 0, buf.byteLength, fail));
  if (model.graphs.length === 0) fail('no graph in the model (not an ONNX file, or truncated)', { expected: 'ModelProto.graph (field 7)', actual: 'absent' });
  const tensors = new Map<string, TensorRef>();
  const nodes: OnnxNode[] = [];
  // Protobuf merges a repeated occurrence of a message field, so several graph fields are one graph.
  for (const g of model.graphs) readGraph(g, path, tensors, nodes);
  const initializerCount = tensors.size;
  const aliases = resolveIdentityAliases(nodes, tensors, fail);
  return {
    format: 'onnx',
    path,
    tensors,
    meta: { ...model.meta, initializerCount, identityAliases: aliases },
  };
}

export function readModel(w: Wire): { graphs: Wire[]; meta: Record<string, unknown> } {
  const graphs: Wire[] = [];
  const meta: Record<string, unknown> = {};
  const opsets: Record<string, number> = {};
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field === 1) (w.expect(wire, VARINT, 'varint ir_version'), (meta.irVersion = w.uint()));
    else if (field === 2) (w.expect(wire, LEN, 'string producer_name'), (meta.producerName = w.string()));
    else if (field === 3) (w.expect(wire, LEN, 'string producer_version'), (meta.producerVersion = w.string()));
    else if (field === 7) (w.expect(wire, LEN, 'GraphProto'), graphs.push(w.sub()));
    else if (field === 8) {
      w.expect(wire, LEN, 'OperatorSetIdProto');
      const { domain, version } = readOpset(w.sub());
      opsets[domain || 'ai.onnx'] = version;
    } else w.skip(wire);
  }
  meta.opsetImport = opsets;
  return { graphs, meta };
}

function readOpset(w: Wire): { domain: string; version: number } {
  let domain = '';
  let version = 0;
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field === 1) (w.expect(wire, LEN, 'string domain'), (domain = w.string()));
    else if (field === 2) (w.expect(wire, VARINT, 'int64 version'), (version = w.uint()));
    else w.skip(wire);
  }
  return { domain, version };
}

function readGraph(w: Wire, file: string, tensors: Map<string, TensorRef>, nodes: OnnxNode[]): void {
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field === 1) (w.expect(wire, LEN, 'NodeProto'), nodes.push(readNode(w.sub())));
    else if (field === 5) {
      w.expect(wire, LEN, 'TensorProto');
      const t = readTensor(w.sub(), file);
      if (tensors.has(t.name)) w.fail('two initializers share a name', { tensor: t.name, expected: 'unique names', actual: 'repeated' });
      tensors.set(t.name, t);
    } else if (field === 15) {
      w.fail('sparse initializers are not supported', { expected: 'dense initializers only', actual: 'GraphProto.sparse_initializer' });
    } else w.skip(wire);
  }
}

export function readNode(w: Wire): OnnxNode {
  const node: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [] };
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field === 1) (w.expect(wire, LEN, 'string input'), node.inputs.push(w.string()));
    else if (field === 2) (w.expect(wire, LEN, 'string output'), node.outputs.push(w.string()));
    else if (field === 3) (w.expect(wire, LEN, 'string name'), (node.name = w.string()));
    else if (field === 4) (w.expect(wire, LEN, 'string op_type'), (node.opType = w.string()));
    else if (field === 7) (w.expect(wire, LEN, 'string domain'), (node.domain = w.string()));
    else w.skip(wire);
  }
  return node;
}

interface RawTensor {
  name: string;
  dims: Array<[number, number]>;
  dataType: number;
  raw?: Uint8Array;
  fixed32: Uint8Array[];
  fixed64: Uint8Array[];
  int32: Array<[number, number]>;
  int64: Array<[number, number]>;
  uint64: Array<[number, number]>;
}

function readTensor(w: Wire, file: string): TensorRef {
  const t: RawTensor = { name: '', dims: [], dataType: 0, fixed32: [], fixed64: [], int32: [], int64: [], uint64: [] };
  let external = false;
  while (w.more()) {
    const { field, wire } = w.tag();
    switch (field) {
      case 1: w.repeatedVarint(wire, t.dims); break;
      case 2: w.expect(wire, VARINT, 'int32 data_type'); t.dataType = w.uint(); break;
      case 3: w.fail('segmented tensors are not supported', { tensor: t.name || undefined, expected: 'one segment', actual: 'TensorProto.segment' }); break;
      case 4: w.repeatedFixed(wire, 4, t.fixed32); break;
      case 5: w.repeatedVarint(wire, t.int32); break;
      case 6: w.fail('string tensors are not weights', { tensor: t.name || undefined, expected: 'numeric data', actual: 'string_data' }); break;
      case 7: w.repeatedVarint(wire, t.int64); break;
      case 8: w.expect(wire, LEN, 'string name'); t.name = w.string(); break;
      case 9: w.expect(wire, LEN, 'bytes raw_data'); t.raw = w.bytes(); break;
      case 10: w.repeatedFixed(wire, 8, t.fixed64); break;
      case 11: w.repeatedVarint(wire, t.uint64); break;
      case 13: external = true; w.skip(wire); break;
      case 14: w.expect(wire, VARINT, 'enum data_location'); if (w.uint() === 1) external = true; break;
      default: w.skip(wire);
    }
  }
  const fail = (message: string, expected: string, actual: string): never => w.fail(message, { tensor: t.name, expected, actual });
  // Checked after the loop: name (field 8) follows the data fields in PyTorch's output.
  if (external) fail('external data is not supported', 'weights stored inside the .onnx file', 'TensorProto.external_data (save with all tensors in one file)');
  const dtype = ONNX_DTYPES[t.dataType] ?? fail('unsupported initializer data type', Object.keys(ONNX_DTYPES).join('|'), `data_type ${t.dataType}`);
  const shape = t.dims.map(([lo, hi]) => (hi < 0x200000 ? hi * 4294967296 + lo : -1));
  if (shape.some((d) => d < 0)) fail('dimension is negative or beyond 2^53', 'non-negative dims', shapeString(shape));
  let count = 1;
  for (const d of shape) if (!Number.isSafeInteger((count *= d))) fail('shape is too large', `numel ≤ ${Number.MAX_SAFE_INTEGER}`, shapeString(shape));
  const bytes = dataBytes(t, dtype, count, fail);
  return bytesTensor(t.name, dtype, shape, file, bytes);
}

type TensorFail = (message: string, expected: string, actual: string) => never;

/** The tensor's values as the little-endian bytes safetensors would hold, whichever field carried them. */
function dataBytes(t: RawTensor, dtype: DType, count: number, fail: TensorFail): Uint8Array {
  const width = DTYPE_BITS[dtype] / 8;
  const typedFields = [t.fixed32, t.fixed64, t.int32, t.int64, t.uint64].filter((a) => a.length > 0).length;
  if (t.raw && typedFields) fail('initializer has both raw_data and typed data', 'one of them', 'both');
  if (typedFields > 1) fail('initializer has data in more than one typed field', 'one field', `${typedFields} fields`);
  let bytes: Uint8Array;
  if (t.raw) bytes = t.raw;
  else if (count === 0) bytes = new Uint8Array(0);
  else if (t.fixed32.length) {
    if (dtype !== 'F32' && dtype !== 'C64') fail('float_data on a non-float tensor', 'FLOAT or COMPLEX64', dtype);
    bytes = Buffer.concat(t.fixed32);
  } else if (t.fixed64.length) {
    if (dtype !== 'F64') fail('double_data on a non-double tensor', 'DOUBLE', dtype);
    bytes = Buffer.concat(t.fixed64);
  } else if (t.int64.length || t.uint64.length) {
    if (t.int64.length ? dtype !== 'I64' : dtype !== 'U32' && dtype !== 'U64') fail('int64_data/uint64_data on the wrong type', 'INT64 / UINT32,UINT64', dtype);
    bytes = packWords(t.int64.length ? t.int64 : t.uint64, width, dtype, fail);
  } else if (t.int32.length) {
    if (width > 4 || dtype === 'U32' || dtype === 'F32') fail('int32_data on the wrong type', 'an integer, BOOL or 8/16-bit float type', dtype);
    bytes = packWords(t.int32, width, dtype, fail);
  } else return fail('initializer holds no data', `${count} values`, 'no raw_data and no typed field');
  if (bytes.byteLength !== count * width) fail(`data size does not match ${dtype}${shapeString(t.dims.map(([lo, hi]) => hi * 4294967296 + lo))}`, `${count * width} bytes`, `${bytes.byteLength} bytes`);
  return bytes;
}

/** int32_data holds 8/16-bit types one per entry (FLOAT16/BFLOAT16 as their bit patterns). */
function packWords(words: ReadonlyArray<[number, number]>, width: number, dtype: DType, fail: TensorFail): Uint8Array {
  const out = new Uint8Array(words.length * width);
  const view = new DataView(out.buffer);
  const signed = dtype === 'I8' || dtype === 'I16' || dtype === 'I32';
  const limit = 2 ** (8 * width);
  for (let i = 0; i < words.length; i++) {
    const [lo, hi] = words[i];
    if (width === 8) {
      view.setUint32(8 * i, lo, true);
      view.setUint32(8 * i + 4, hi, true);
      continue;
    }
    // int32 varints of negative values are sign-extended to 64 bits on the wire.
    const v = signed ? lo | 0 : lo;
    const fits = signed ? v >= -limit / 2 && v < limit / 2 && (hi === 0 || hi === 0xffffffff) : hi === 0 && v < limit;
    if (!fits) fail(`int32_data entry ${i} does not fit ${dtype}`, signed ? `${-limit / 2}..${limit / 2 - 1}` : `0..${limit - 1}`, String(hi ? BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)) : v));
    if (width === 1) view.setUint8(i, v & 0xff);
    else if (width === 2) view.setUint16(2 * i, v & 0xffff, true);
    else view.setInt32(4 * i, v, true);
  }
  return out;
}

/**
 * Root-level (module-less, so no leading "/") `Identity(x)` nodes whose input is an initializer, or
 * an alias already resolved, expose x under the output's name. Returns alias → initializer name.
 */
function resolveIdentityAliases(nodes: readonly OnnxNode[], tensors: Map<string, TensorRef>, fail: Fail): Record<string, string> {
  const aliases: Record<string, string> = {};
  const pending = nodes.filter((n) => n.opType === 'Identity' && (n.domain === '' || n.domain === 'ai.onnx')
    && !n.name.startsWith('/') && n.inputs.length === 1 && n.outputs.length === 1);
  // Nodes are normally topologically sorted, but chains are resolved to a fixed point regardless.
  for (let progress = true; progress;) {
    progress = false;
    for (let i = 0; i < pending.length; i++) {
      const [input] = pending[i].inputs;
      const [output] = pending[i].outputs;
      const source = tensors.get(input);
      if (!source) continue;
      if (tensors.has(output)) fail('Identity output shadows an initializer', { tensor: output, expected: 'a new value name', actual: `also an initializer (node ${pending[i].name})` });
      tensors.set(output, { ...source, name: output });
      aliases[output] = aliases[input] ?? input;
      pending.splice(i--, 1);
      progress = true;
    }
  }
  return aliases;
}
