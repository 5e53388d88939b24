/**
 * The computation graph of an ONNX model, as a live reference needs it: the graph inputs (with
 * their element types, to build feeds), the graph outputs, the nodes in file order (PyTorch's
 * exporter names them by module scope, `/bert/encoder/layer.0/attention/self/Softmax`) and the
 * initializer names. Decoded with the same bounds-checked wire cursor as the initializer reader.
 *
 * It also refuses what must never reach a runtime: a tensor with external data anywhere
 * (initializers, Constant attributes, subgraphs, functions) would make the runtime open whatever
 * path the file names; and sparse initializers, which nothing here reads.
 *
 * The one edit made to a model is adding graph outputs, in memory: protobuf merges a repeated
 * occurrence of a message field, so `original bytes + graph { output { name } }` is the original
 * model with more outputs, and nothing else is re-encoded. The element type is left unset: the
 * runtime infers it from the node that produces the value.
 */
import { InputError } from '../../errors.ts';
import { readModel, readNode, type OnnxNode } from './onnx.ts';
import { LEN, VARINT, Wire, type Fail } from './protobuf.ts';
import { readWholeFile } from './safetensors.ts';

/** onnx.proto TensorProto.DataType values the reference runner feeds or reads. */
export const ONNX_FLOAT = 1;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;

export interface OnnxValueInfo {
  name: string;
  /** TensorProto.DataType; null when the file leaves the type unset. */
  elemType: number | null;
}

export interface OnnxGraph {
  file: string;
  bytes: Buffer;
  /** Graph inputs that are fed at run time (initializers listed as inputs are left out). */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Top-level nodes in file order (topological for exporter output). */
  nodes: OnnxNode[];
  initializers: ReadonlySet<string>;
  meta: Record<string, unknown>;
}

export function readOnnxGraph(path: string): OnnxGraph {
  const bytes = readWholeFile(path);
  const fail: Fail = (message, d = {}) => {
    throw new InputError(message, { file: path, ...d });
  };
  const { graphs, meta } = readModel(new Wire(bytes, 0, bytes.byteLength, fail));
  if (graphs.length === 0) fail('no graph in the model (not an ONNX file, or truncated)', { expected: 'ModelProto.graph (field 7)', actual: 'absent' });
  checkFunctions(new Wire(bytes, 0, bytes.byteLength, fail));
  const inputs: OnnxValueInfo[] = [];
  const outputs: OnnxValueInfo[] = [];
  const nodes: OnnxNode[] = [];
  const initializers = new Set<string>();
  // Several graph fields are one graph (protobuf merge), the way withExtraOutputs relies on.
  for (const g of graphs) readGraphStructure(g, { inputs, outputs, nodes, initializers });
  if (outputs.length === 0) fail('the graph has no outputs', { expected: 'GraphProto.output', actual: 'none' });
  return { file: path, bytes, inputs: inputs.filter((i) => !initializers.has(i.name)), outputs, nodes, initializers, meta };
}

interface GraphParts {
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  nodes: OnnxNode[];
  initializers: Set<string>;
}

function readGraphStructure(w: Wire, into: GraphParts | null): void {
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field === 1) {
      w.expect(wire, LEN, 'NodeProto');
      const sub = w.sub();
      const node = readNode(new Wire(sub.buf, sub.pos, sub.end, sub.fail));
      checkNodeAttributes(sub, node.name);
      into?.nodes.push(node);
    } else if (field === 5) {
      w.expect(wire, LEN, 'TensorProto');
      const name = checkInlineTensor(w.sub());
      into?.initializers.add(name);
    } else if (field === 11 || field === 12) {
      w.expect(wire, LEN, 'ValueInfoProto');
      const info = readValueInfo(w.sub());
      into?.[field === 11 ? 'inputs' : 'outputs'].push(info);
    } else if (field === 15) {
      w.fail('sparse initializers are not supported', { expected: 'dense initializers only', actual: 'GraphProto.sparse_initializer' });
    } else w.skip(wire);
  }
}

/** AttributeProto tensors and subgraphs of one node: t(5), g(6), tensors(10), graphs(11), sparse(22, 23). */
function checkNodeAttributes(w: Wire, nodeName: string): void {
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field !== 5) {
      w.skip(wire);
      continue;
    }
    w.expect(wire, LEN, 'AttributeProto');
    const a = w.sub();
    while (a.more()) {
      const { field: f, wire: aw } = a.tag();
      if (f === 5 || f === 10) (a.expect(aw, LEN, 'TensorProto'), checkInlineTensor(a.sub()));
      else if (f === 6 || f === 11) (a.expect(aw, LEN, 'GraphProto'), readGraphStructure(a.sub(), null));
      else if (f === 22 || f === 23) a.fail('sparse tensor attributes are not supported', { tensor: nodeName || undefined, expected: 'dense tensors', actual: 'AttributeProto.sparse_tensor' });
      else a.skip(aw);
    }
  }
}

/** ModelProto.functions(25) → FunctionProto.node(7): checked like graph nodes. */
function checkFunctions(w: Wire): void {
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field !== 25) {
      w.skip(wire);
      continue;
    }
    w.expect(wire, LEN, 'FunctionProto');
    const f = w.sub();
    while (f.more()) {
      const { field: ff, wire: fw } = f.tag();
      if (ff === 7) (f.expect(fw, LEN, 'NodeProto'), checkNodeAttributes(f.sub(), ''));
      else f.skip(fw);
    }
  }
}

/** A TensorProto's name, after refusing external data (external_data(13), data_location(14) = EXTERNAL). */
function checkInlineTensor(w: Wire): string {
  let name = '';
  let external = false;
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field === 8) (w.expect(wire, LEN, 'string name'), (name = w.string()));
    else if (field === 13) (external = true, w.skip(wire));
    else if (field === 14) (w.expect(wire, VARINT, 'enum data_location'), w.uint() === 1 && (external = true));
    else w.skip(wire);
  }
  if (external) w.fail('external data is not supported', { tensor: name || undefined, expected: 'every tensor stored inside the .onnx file', actual: 'TensorProto.external_data' });
  return name;
}

/** ValueInfoProto: name(1), type(2) → TypeProto.tensor_type(1) → elem_type(1). */
function readValueInfo(w: Wire): OnnxValueInfo {
  const info: OnnxValueInfo = { name: '', elemType: null };
  while (w.more()) {
    const { field, wire } = w.tag();
    if (field === 1) (w.expect(wire, LEN, 'string name'), (info.name = w.string()));
    else if (field === 2) {
      w.expect(wire, LEN, 'TypeProto');
      const type = w.sub();
      while (type.more()) {
        const t = type.tag();
        if (t.field !== 1) {
          type.skip(t.wire);
          continue;
        }
        type.expect(t.wire, LEN, 'TypeProto.Tensor');
        const tensor = type.sub();
        while (tensor.more()) {
          const e = tensor.tag();
          if (e.field === 1) (tensor.expect(e.wire, VARINT, 'int32 elem_type'), (info.elemType = tensor.uint()));
          else tensor.skip(e.wire);
        }
      }
    } else w.skip(wire);
  }
  return info;
}

/** `bytes` with `names` appended to graph.output (untyped), by protobuf's merge of repeated fields. */
export function withExtraOutputs(bytes: Uint8Array, names: readonly string[]): Buffer {
  if (names.length === 0) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const outputs = names.map((n) => lengthField(12, lengthField(1, Buffer.from(n, 'utf8')))); // ValueInfoProto{name}
  return Buffer.concat([bytes, lengthField(7, Buffer.concat(outputs))]); // ModelProto.graph{output…}
}

function lengthField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint(field * 8 + LEN), varint(payload.byteLength), payload]);
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}
