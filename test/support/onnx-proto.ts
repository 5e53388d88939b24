/**
 * A protobuf writer of the tests' own for synthetic ONNX models (independent of the readers under
 * test): ModelProto with one graph of nodes and initializers, and the field encoders to build
 * anything else (attributes, value infos) by hand.
 */
export function varint(value: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? b | 0x80 : b);
  } while (v);
  return Buffer.from(out);
}
export const tag = (field: number, wire: number) => varint(field * 8 + wire);
export const vField = (field: number, value: bigint | number) => Buffer.concat([tag(field, 0), varint(value)]);
export const lField = (field: number, bytes: Uint8Array | string) => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes);
  return Buffer.concat([tag(field, 2), varint(b.length), b]);
};
export const f32le = (values: number[]) => Buffer.from(new Float32Array(values).buffer);

export interface TensorSpec {
  name: string;
  dims: number[];
  type: number;
  raw?: Uint8Array;
  floats?: number[];
  int32s?: number[];
  int64s?: bigint[];
  doubles?: number[];
  uint64s?: bigint[];
  packed?: boolean;
  extra?: Buffer;
}

export function tensorProto(t: TensorSpec): Buffer {
  const parts: Buffer[] = [];
  for (const d of t.dims) parts.push(vField(1, d));
  parts.push(vField(2, t.type));
  const packedOr = (field: number, encoded: Buffer[], single: (i: number) => Buffer) =>
    t.packed === false ? encoded.map((_, i) => single(i)) : [lField(field, Buffer.concat(encoded))];
  if (t.floats) parts.push(...packedOr(4, t.floats.map((v) => f32le([v])), (i) => Buffer.concat([tag(4, 5), f32le([t.floats![i]])])));
  if (t.int32s) parts.push(...packedOr(5, t.int32s.map((v) => varint(v)), (i) => vField(5, t.int32s![i])));
  if (t.int64s) parts.push(...packedOr(7, t.int64s.map((v) => varint(v)), (i) => vField(7, t.int64s![i])));
  if (t.doubles) parts.push(lField(10, Buffer.from(new Float64Array(t.doubles).buffer)));
  if (t.uint64s) parts.push(lField(11, Buffer.concat(t.uint64s.map((v) => varint(v)))));
  parts.push(lField(8, t.name));
  if (t.raw) parts.push(lField(9, t.raw));
  if (t.extra) parts.push(t.extra);
  return Buffer.concat(parts);
}

export function nodeProto(name: string, opType: string, inputs: string[], outputs: string[]): Buffer {
  return Buffer.concat([...inputs.map((i) => lField(1, i)), ...outputs.map((o) => lField(2, o)), lField(3, name), lField(4, opType)]);
}

export function modelProto(graph: { initializers?: TensorSpec[]; nodes?: Buffer[]; extra?: Buffer }): Buffer {
  const g = Buffer.concat([
    ...(graph.nodes ?? []).map((n) => lField(1, n)),
    lField(2, 'g'),
    ...(graph.initializers ?? []).map((t) => lField(5, tensorProto(t))),
    graph.extra ?? Buffer.alloc(0),
  ]);
  return Buffer.concat([vField(1, 8), lField(2, 'test'), lField(7, g), lField(8, Buffer.concat([lField(1, ''), vField(2, 17)]))]);
}

/** ValueInfoProto with a tensor type of `elemType` (1 float, 7 int64) and no shape. */
export function valueInfo(name: string, elemType: number): Buffer {
  return Buffer.concat([lField(1, name), lField(2, lField(1, vField(1, elemType)))]);
}

/** A runnable model: graph inputs and outputs with their types, nodes, and initializers. */
export function runnableModel(graph: { inputs: Array<[string, number]>; outputs: Array<[string, number]>; nodes: Buffer[]; initializers?: TensorSpec[] }): Buffer {
  const g = Buffer.concat([
    ...graph.nodes.map((n) => lField(1, n)),
    lField(2, 'g'),
    ...(graph.initializers ?? []).map((t) => lField(5, tensorProto(t))),
    ...graph.inputs.map(([n, t]) => lField(11, valueInfo(n, t))),
    ...graph.outputs.map(([n, t]) => lField(12, valueInfo(n, t))),
  ]);
  return Buffer.concat([vField(1, 8), lField(2, 'test'), lField(7, g), lField(8, Buffer.concat([lField(1, ''), vField(2, 17)]))]);
}

/** A node with attributes already encoded (AttributeProto bytes). */
export function nodeWithAttributes(name: string, opType: string, inputs: string[], outputs: string[], attributes: Buffer[]): Buffer {
  return Buffer.concat([nodeProto(name, opType, inputs, outputs), ...attributes.map((a) => lField(5, a))]);
}

/** AttributeProto holding one tensor (type TENSOR = 4). */
export function tensorAttribute(name: string, tensor: TensorSpec): Buffer {
  return Buffer.concat([lField(1, name), lField(5, tensorProto(tensor)), vField(20, 4)]);
}
