/**
 * ONNX initializers. Oracles: the "Initializers and HF parameters" tables in the baseline READMEs
 * (names, shapes, which ones are Identity aliases of which initializer), and model.safetensors,
 * whose values the exporter copied (compared bit for bit). Synthetic models are encoded here with
 * a protobuf writer of the test's own.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { readOnnxInitializers } from '../../../src/weightmap/readers/onnx.ts';
import { readSafetensors } from '../../../src/weightmap/readers/safetensors.ts';
import { lField, modelProto, nodeProto, tag, varint, vField, f32le, type TensorSpec } from '../../support/onnx-proto.ts';

const BASELINES = join(import.meta.dirname, '../../../baselines');
const tmp = mkdtempSync(join(tmpdir(), 'parity-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface ParamRow { name: string; shape: number[]; aliasOf?: string; tied: string[] }
interface OnnxDoc { file: string; initializers: number; params: ParamRow[]; nonParams: string[]; absent: string[] }

/** Each `### \`x.onnx\`` section of a README: its initializer count and parameter table. */
function onnxDocs(model: string): OnnxDoc[] {
  const readme = readFileSync(join(BASELINES, model, 'README.md'), 'utf8');
  const docs: OnnxDoc[] = [];
  for (const section of readme.split(/^(?=### )/m)) {
    const head = /^### `([^`]+\.onnx)`/.exec(section);
    if (!head) continue;
    const count = /\*\*Initializers and HF parameters\.\*\* (\d+) initializers/.exec(section);
    const params: ParamRow[] = [];
    for (const m of section.matchAll(/^\| `([^`]+)` \| \[([^\]]*)\] \| (initializer|output of `Identity_\d+` = Identity\(`([^`]+)`\)) \|([^|]*)\|$/gm)) {
      params.push({ name: m[1], shape: m[2].split(',').map(Number), aliasOf: m[4], tied: [...m[5].matchAll(/`([^`]+)`/g)].map((t) => t[1]) });
    }
    const nonParams = [...(/Non-parameter initializers: ([^\n]*)/.exec(section)?.[1] ?? '').matchAll(/`([^`]+)` \(buffer/g)].map((m) => m[1]);
    const absent = [...(/does not use \(absent\): ([^\n]*)/.exec(section)?.[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    docs.push({ file: join(BASELINES, model, head[1]), initializers: Number(count?.[1]), params, nonParams, absent });
  }
  return docs;
}

const docs = ['bert', 'gpt2', 't5'].flatMap((m) => onnxDocs(m).map((d) => [m, d] as const));

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('readOnnxInitializers on the baseline exports', () => {
  it('finds the four exported graphs documented', () => {
    expect(docs.map(([, d]) => d.file.slice(BASELINES.length + 1)).sort()).toEqual(['bert/model.onnx', 'gpt2/model.onnx', 't5/decoder.onnx', 't5/encoder.onnx']);
    for (const [, d] of docs) expect(d.params.length).toBeGreaterThan(15);
  });

  it.each(docs.map(([m, d]) => [d.file.slice(BASELINES.length + 1), m, d] as const))('%s exposes every HF parameter under its name, bit-exact to model.safetensors', (_, model, doc) => {
    const ckpt = readOnnxInitializers(doc.file);
    const reference = readSafetensors(join(BASELINES, model, 'model.safetensors'));
    expect(ckpt.format).toBe('onnx');
    expect(ckpt.meta.initializerCount).toBe(doc.initializers);
    expect([...ckpt.tensors.keys()].sort()).toEqual([...doc.params.map((p) => p.name), ...doc.nonParams].sort());
    const aliases = ckpt.meta.identityAliases as Record<string, string>;
    expect(Object.keys(aliases).length).toBe(doc.params.filter((p) => p.aliasOf).length);
    for (const p of doc.params) {
      const t = ckpt.tensors.get(p.name)!;
      expect({ name: p.name, shape: [...t.shape], dtype: t.dtype }).toEqual({ name: p.name, shape: p.shape, dtype: 'F32' });
      expect(aliases[p.name]).toBe(p.aliasOf);
      const ref = reference.tensors.get(p.name)!;
      expect([...ref.shape]).toEqual(p.shape);
      expect(bits(t.toFloat32()).equals(bits(ref.toFloat32())), p.name).toBe(true);
      // A tied key is exposed once, under the first name.
      for (const tied of p.tied) expect(ckpt.tensors.has(tied)).toBe(false);
    }
    for (const name of doc.absent) expect(ckpt.tensors.has(name)).toBe(false);
  });

  it('reads the int64 position_ids buffer of the bert export as arange(128)', () => {
    const t = readOnnxInitializers(join(BASELINES, 'bert/model.onnx')).tensors.get('bert.embeddings.position_ids')!;
    expect(t.dtype).toBe('I64');
    expect(t.shape).toEqual([1, 128]);
    expect([...t.toInt32()]).toEqual(Array.from({ length: 128 }, (_, i) => i));
  });

  it('reports the model header fields the README gives (IR 7, pytorch 1.13.0, opset 14)', () => {
    const { meta } = readOnnxInitializers(join(BASELINES, 'gpt2/model.onnx'));
    expect(meta).toMatchObject({ irVersion: 7, producerName: 'pytorch', producerVersion: '1.13.0', opsetImport: { 'ai.onnx': 14 } });
  });
});

let counter = 0;
function save(bytes: Uint8Array): string {
  const path = join(tmp, `m${counter++}.onnx`);
  writeFileSync(path, bytes);
  return path;
}

describe('readOnnxInitializers on synthetic models', () => {
  it.each([true, false])('decodes typed fields (packed=%s)', (packed) => {
    const path = save(modelProto({ initializers: [
      { name: 'f', dims: [2, 2], type: 1, floats: [1.5, -2, 0.1, 1e-40], packed },
      { name: 'i8', dims: [3], type: 3, int32s: [-128, 127, -1], packed },
      { name: 'u16', dims: [2], type: 4, int32s: [65535, 0], packed },
      { name: 'h', dims: [3], type: 10, int32s: [0x3c00, 0xc000, 0x0001], packed },
      { name: 'bf', dims: [1], type: 16, int32s: [0x3f80], packed },
      { name: 'b', dims: [3], type: 9, int32s: [1, 0, 1], packed },
      { name: 'i64', dims: [3], type: 7, int64s: [-5n, 2n ** 40n, 7n], packed },
      { name: 'i32', dims: [2], type: 6, int32s: [-(2 ** 31), 2 ** 31 - 1], packed },
    ] }));
    const t = readOnnxInitializers(path).tensors;
    expect([...t.get('f')!.toFloat32()]).toEqual([1.5, -2, Math.fround(0.1), Math.fround(1e-40)]);
    expect(t.get('f')!.shape).toEqual([2, 2]);
    expect([...t.get('i8')!.toInt32()]).toEqual([-128, 127, -1]);
    expect([...t.get('u16')!.toInt32()]).toEqual([65535, 0]);
    expect([...t.get('h')!.toFloat32()]).toEqual([1, -2, 2 ** -24]);
    expect([...t.get('bf')!.toFloat32()]).toEqual([1]);
    expect(t.get('b')!.dtype).toBe('BOOL');
    expect([...t.get('b')!.toInt32()]).toEqual([1, 0, 1]);
    expect([...t.get('i64')!.toFloat32()]).toEqual([-5, 2 ** 40, 7]);
    expect(() => t.get('i64')!.toInt32()).toThrow(/does not fit in int32/);
    expect([...t.get('i32')!.toInt32()]).toEqual([-(2 ** 31), 2 ** 31 - 1]);
  });

  it('decodes double_data, uint64_data, raw_data at an odd offset and empty tensors', () => {
    const path = save(modelProto({ initializers: [
      { name: 'd', dims: [2], type: 11, doubles: [0.5, -1e300] },
      { name: 'u32', dims: [2], type: 12, uint64s: [4294967295n, 3n] },
      { name: 'raw', dims: [3], type: 1, raw: f32le([3, -4, 5.5]) },
      { name: 'empty', dims: [0, 3], type: 1 },
    ] }));
    const t = readOnnxInitializers(path).tensors;
    expect([...t.get('d')!.toFloat32()]).toEqual([0.5, -Infinity]);
    expect([...t.get('u32')!.toFloat32()]).toEqual([4294967296, 3]);
    expect([...t.get('raw')!.toFloat32()]).toEqual([3, -4, 5.5]);
    expect(t.get('empty')!.toFloat32()).toHaveLength(0);
  });

  it('resolves root-level Identity aliases, chains included, and nothing else', () => {
    const path = save(modelProto({
      initializers: [{ name: 'a', dims: [2], type: 1, floats: [1, 2] }],
      nodes: [
        nodeProto('Identity_1', 'Identity', ['b'], ['c']), // chain listed before its source
        nodeProto('Identity_0', 'Identity', ['a'], ['b']),
        nodeProto('/enc/Identity', 'Identity', ['a'], ['scoped']), // inside a module: a computed value
        nodeProto('Identity_2', 'Identity', ['input_ids'], ['not_a_weight']), // input is a graph input
        nodeProto('Relu_0', 'Relu', ['a'], ['relu_out']),
      ],
    }));
    const ckpt = readOnnxInitializers(path);
    expect([...ckpt.tensors.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(ckpt.meta.identityAliases).toEqual({ b: 'a', c: 'a' });
    expect(ckpt.tensors.get('c')!.name).toBe('c');
    expect([...ckpt.tensors.get('c')!.toFloat32()]).toEqual([1, 2]);
    expect(ckpt.meta.initializerCount).toBe(1);
  });

  const ok: TensorSpec = { name: 'w', dims: [2], type: 1, floats: [1, 2] };
  const bad: Array<[string, Buffer, string?]> = [
    ['external data', modelProto({ initializers: [{ ...ok, floats: undefined, extra: lField(13, Buffer.concat([lField(1, 'location'), lField(2, 'w.bin')])) }] }), 'w'],
    ['data_location EXTERNAL', modelProto({ initializers: [{ ...ok, extra: vField(14, 1) }] }), 'w'],
    ['raw_data shorter than the shape', modelProto({ initializers: [{ name: 'w', dims: [3], type: 1, raw: f32le([1, 2]) }] }), 'w'],
    ['float_data count wrong', modelProto({ initializers: [{ ...ok, dims: [3] }] }), 'w'],
    ['raw_data and float_data both', modelProto({ initializers: [{ ...ok, raw: f32le([1, 2]) }] }), 'w'],
    ['no data at all', modelProto({ initializers: [{ name: 'w', dims: [2], type: 1 }] }), 'w'],
    ['int32_data out of range for INT8', modelProto({ initializers: [{ name: 'w', dims: [1], type: 3, int32s: [200] }] }), 'w'],
    ['float_data on an INT32 tensor', modelProto({ initializers: [{ ...ok, type: 6 }] }), 'w'],
    ['string tensor', modelProto({ initializers: [{ name: 'w', dims: [1], type: 8, extra: lField(6, 'hello') }] })],
    ['unknown data type', modelProto({ initializers: [{ ...ok, type: 99 }] }), 'w'],
    ['negative dim', modelProto({ initializers: [{ ...ok, dims: [-2] }] }), 'w'],
    ['overflowing dims', modelProto({ initializers: [{ ...ok, dims: [2 ** 30, 2 ** 30, 2 ** 30] }] }), 'w'],
    ['two initializers with one name', modelProto({ initializers: [ok, ok] }), 'w'],
    ['Identity output shadowing an initializer', modelProto({ initializers: [ok, { ...ok, name: 'v' }], nodes: [nodeProto('Identity_0', 'Identity', ['w'], ['v'])] }), 'v'],
    ['sparse initializer', modelProto({ extra: lField(15, Buffer.alloc(0)) })],
    ['no graph', Buffer.concat([vField(1, 8), lField(2, 'x')])],
    ['empty file', Buffer.alloc(0)],
    ['truncated varint', Buffer.from([0x08, 0x80])],
    ['varint longer than 10 bytes', Buffer.concat([Buffer.from([0x08]), Buffer.alloc(11, 0xff), Buffer.from([0x01])])],
    ['length beyond the file', Buffer.concat([tag(7, 2), varint(1000), Buffer.alloc(10)])],
    ['length of 2^60', Buffer.concat([tag(7, 2), varint(2n ** 60n), Buffer.alloc(10)])],
    ['group wire type', Buffer.from([0x0b, 0x0c])],
    ['field number 0', Buffer.from([0x00, 0x01])],
    ['graph field with varint wire type', Buffer.concat([vField(7, 1)])],
    ['fixed32 cut short', Buffer.concat([tag(9, 5), Buffer.alloc(2)])],
    ['packed floats not a multiple of 4', modelProto({ initializers: [{ name: 'w', dims: [1], type: 1, extra: lField(4, Buffer.alloc(6)) }] })],
    ['a text file', Buffer.from('this is not a model\n')],
  ];

  it.each(bad)('refuses %s with an InputError naming the file', (_, bytes, tensor) => {
    const path = save(bytes);
    let error: unknown;
    try {
      readOnnxInitializers(path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toContain(path);
    if (tensor) expect((error as InputError).tensor).toBe(tensor);
  }, 5_000);
});

describe('readOnnxInitializers on damaged real files', () => {
  const source = readFileSync(join(BASELINES, 'bert/model.onnx'));

  /** Where the top-level graph field's length varint and payload lie, found with the test's own varint parse. */
  function graphField(buf: Buffer): { lengthAt: number; dataAt: number; length: number } {
    let pos = 0;
    const read = () => {
      let v = 0;
      for (let s = 0; ; s += 7) {
        const b = buf[pos++];
        v += (b & 0x7f) * 2 ** s;
        if (!(b & 0x80)) return v;
      }
    };
    while (pos < buf.length) {
      const t = read();
      if (t % 8 === 0) read();
      else if (t % 8 === 2) {
        const lengthAt = pos;
        const length = read();
        if (t >> 3 === 7) return { lengthAt, dataAt: pos, length };
        pos += length;
      } else throw new Error('unexpected wire type at top level');
    }
    throw new Error('no graph');
  }

  const graph = graphField(source);
  const end = graph.dataAt + graph.length;
  const lengths = [1, 2, 3, 10, 20, 30, 31, 32, 33, 100, ...Array.from({ length: 30 }, (_, i) => Math.floor(((i + 1) * end) / 31)), end - 1];

  it.each(lengths)('refuses the bert export truncated to %i bytes', (len) => {
    const path = save(source.subarray(0, len));
    expect(() => readOnnxInitializers(path)).toThrow(InputError);
  }, 5_000);

  it.each([1, 1000, 2 ** 40])('refuses a graph whose length claims %i bytes more than the file has', (extra) => {
    const lying = Buffer.concat([source.subarray(0, graph.lengthAt), varint(source.length - graph.dataAt + extra), source.subarray(graph.dataAt)]);
    const path = save(lying);
    expect(() => readOnnxInitializers(path)).toThrow(/past the end/);
  });

  it('accepts the same bytes with the true length (so the lie is what fails)', () => {
    const honest = Buffer.concat([source.subarray(0, graph.lengthAt), varint(graph.length), source.subarray(graph.dataAt)]);
    expect(readOnnxInitializers(save(honest)).tensors.size).toBe(47);
  });
});
