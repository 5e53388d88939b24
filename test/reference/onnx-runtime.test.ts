/**
 * onnxruntime-node as a live reference. Oracles: the stored PyTorch forwards (forward_initial)
 * that the baseline READMEs say ORT reproduces within 2e-6, and their tables naming the Softmax
 * value of each layer; synthetic models are encoded by the tests' own protobuf writer.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readInputs } from '../../src/align/batch-io.ts';
import { InputError } from '../../src/errors.ts';
import { OnnxReference } from '../../src/reference/onnx-reference.ts';
import { OnnxModel } from '../../src/reference/onnx-runtime.ts';
import { readSafetensors } from '../../src/weightmap/readers/safetensors.ts';
import { BASELINES } from '../support/backend.ts';
import { catchErrorAsync } from '../support/catch-error.ts';
import { f32le, lField, nodeProto, nodeWithAttributes, runnableModel, tensorAttribute, vField } from '../support/onnx-proto.ts';

const tmp = mkdtempSync(join(tmpdir(), 'parity-ort-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
function save(bytes: Uint8Array, name = `m${counter++}.onnx`): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

const f = (suite: string, file: string) => join(BASELINES, suite, file);
const inputs = (suite: string) => readInputs(readSafetensors(f(suite, 'eval_inputs.safetensors')));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// The README tables: ONNX value name of each stored attention map.
const SOFTMAX: Record<string, Record<string, string>> = {
  bert: { 'attentions.0': '/bert/encoder/layer.0/attention/self/Softmax_output_0', 'attentions.1': '/bert/encoder/layer.1/attention/self/Softmax_output_0' },
  gpt2: { 'attentions.0': '/transformer/h.0/attn/Softmax_output_0', 'attentions.1': '/transformer/h.1/attn/Softmax_output_0' },
};

describe('OnnxModel on the baseline exports', () => {
  it.each(['bert', 'gpt2'])('%s: graph outputs and requested Softmax values are within 2e-6 of the stored PyTorch forward', async (suite) => {
    const model = OnnxModel.open(f(suite, 'model.onnx'));
    const stored = readSafetensors(f(suite, 'forward_initial.safetensors'));
    const values = await model.run(inputs(suite), Object.values(SOFTMAX[suite]));
    await model.release();
    const names = [...model.graph.outputs.map((o) => o.name), ...Object.keys(SOFTMAX[suite])];
    for (const name of names) {
      const value = values.get(SOFTMAX[suite][name] ?? name)!;
      const ref = stored.tensors.get(name)!;
      expect(value.shape, name).toEqual([...ref.shape]);
      expect(maxAbsDiff(value.data, ref.toFloat32()), name).toBeLessThanOrEqual(2e-6);
    }
  });

  it('t5: encoder then decoder, fed the encoder output and the encoder mask, reproduce the stored forward', async () => {
    const ref = OnnxReference.open([f('t5', 'encoder.onnx'), f('t5', 'decoder.onnx')]);
    const [enc, dec] = await ref.run(inputs('t5'), [[], ['/decoder/block.1/layer.1/EncDecAttention/Softmax_output_0']]);
    await ref.release();
    const stored = readSafetensors(f('t5', 'forward_initial.safetensors'));
    const check = (value: Float32Array | undefined, name: string) => expect(maxAbsDiff(value!, stored.tensors.get(name)!.toFloat32()), name).toBeLessThanOrEqual(2e-6);
    for (const name of ['encoder_last_hidden_state', 'encoder_hidden_states.0', 'encoder_hidden_states.1']) check(enc.get(name)?.data, name);
    for (const name of ['logits', 'decoder_hidden_states.0', 'decoder_hidden_states.1', 'decoder_hidden_states.2']) check(dec.get(name)?.data, name);
    check(dec.get('/decoder/block.1/layer.1/EncDecAttention/Softmax_output_0')?.data, 'cross_attentions.1');
  });

  it('never writes the file, and runs the same twice bit for bit (one thread, sequential)', async () => {
    const path = f('gpt2', 'model.onnx');
    const before = createHash('sha256').update(readFileSync(path)).digest('hex');
    const model = OnnxModel.open(path);
    const extra = ['/transformer/h.1/mlp/act/Mul_3_output_0'];
    const a = await model.run(inputs('gpt2'), extra);
    const b = await model.run(inputs('gpt2'), extra);
    await model.release();
    for (const [name, v] of a) expect(Buffer.from(v.data.buffer).equals(Buffer.from(b.get(name)!.data.buffer)), name).toBe(true);
    expect(a.has(extra[0])).toBe(true);
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(before);
  });

  it('leaves out requested values that are not floats (int64 shape arithmetic)', async () => {
    const model = OnnxModel.open(f('bert', 'model.onnx'));
    const values = await model.run(inputs('bert'), ['/bert/embeddings/Slice_output_0']);
    await model.release();
    expect(values.has('/bert/embeddings/Slice_output_0')).toBe(false);
    expect(values.has('prediction_logits')).toBe(true);
  });

  it('refuses a value no node produces, and a missing input, naming the file and the name', async () => {
    const model = OnnxModel.open(f('bert', 'model.onnx'));
    const e1 = await catchErrorAsync(() => model.run(inputs('bert'), ['/bert/no/such/value']));
    expect(e1).toBeInstanceOf(InputError);
    expect((e1 as InputError).message).toContain(f('bert', 'model.onnx'));
    expect((e1 as InputError).tensor).toBe('/bert/no/such/value');
    const { token_type_ids: _, ...noTypes } = inputs('bert');
    const e2 = await catchErrorAsync(() => model.run(noTypes));
    expect((e2 as InputError).tensor).toBe('token_type_ids');
    await model.release();
  });
});

describe('OnnxModel on a synthetic graph', () => {
  const relu = () => runnableModel({ inputs: [['x', 1]], outputs: [['y', 1]], nodes: [nodeProto('/m/Neg', 'Neg', ['x'], ['n']), nodeProto('/m/Relu', 'Relu', ['n'], ['y'])] });

  it('runs it and returns an intermediate value added as an output in memory', async () => {
    const model = OnnxModel.open(save(relu()));
    const values = await model.run({ x: { shape: [3], data: Float32Array.from([-1, 0.5, 2]) } }, ['n']);
    await model.release();
    expect([...values.get('y')!.data]).toEqual([1, 0, 0]);
    expect([...values.get('n')!.data]).toEqual([1, -0.5, -2]);
  });
});

describe('a missing, truncated or hostile .onnx is an InputError naming it', () => {
  const source = readFileSync(f('bert', 'model.onnx'));
  const external = (location: string) => Buffer.concat([lField(13, Buffer.concat([lField(1, 'location'), lField(2, location)])), vField(14, 1)]);
  const hostile: Array<[string, Buffer]> = [
    ['a text file', Buffer.from('not a model\n')],
    ['an empty file', Buffer.alloc(0)],
    ['external data in a Constant attribute pointing outside', runnableModel({
      inputs: [['x', 1]], outputs: [['y', 1]],
      nodes: [nodeWithAttributes('/m/Constant', 'Constant', [], ['c'], [tensorAttribute('value', { name: 'c', dims: [1], type: 1, extra: external('../../../etc/passwd') })]), nodeProto('/m/Add', 'Add', ['x', 'c'], ['y'])],
    })],
    ['external data in an initializer', runnableModel({ inputs: [['x', 1]], outputs: [['y', 1]], nodes: [nodeProto('/m/Add', 'Add', ['x', 'w'], ['y'])], initializers: [{ name: 'w', dims: [1], type: 1, extra: external('/etc/shadow') }] })],
    ['an operator onnxruntime does not know', runnableModel({ inputs: [['x', 1]], outputs: [['y', 1]], nodes: [nodeProto('/m/Evil', 'NoSuchOp', ['x'], ['y'])] })],
    ['a node reading a value nothing produces', runnableModel({ inputs: [['x', 1]], outputs: [['y', 1]], nodes: [nodeProto('/m/Add', 'Add', ['x', 'ghost'], ['y'])] })],
    ['a graph with no outputs', runnableModel({ inputs: [['x', 1]], outputs: [], nodes: [nodeProto('/m/Relu', 'Relu', ['x'], ['y'])] })],
    ['a float initializer whose raw data is short', runnableModel({ inputs: [['x', 1]], outputs: [['y', 1]], nodes: [nodeProto('/m/Add', 'Add', ['x', 'w'], ['y'])], initializers: [{ name: 'w', dims: [4], type: 1, raw: f32le([1]) }] })],
    ...[1, 10, 100, 1000, 10_000, Math.floor(source.length / 2), source.length - 1].map((n): [string, Buffer] => [`the bert export cut to ${n} bytes`, source.subarray(0, n)]),
  ];

  it.each(hostile)('%s', async (_, bytes) => {
    const path = save(bytes);
    const error = await catchErrorAsync(async () => {
      const model = OnnxModel.open(path);
      try {
        await model.run({ x: { shape: [1], data: Float32Array.from([1]) } });
      } finally {
        await model.release();
      }
    });
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toContain(path);
  });

  it('a path that does not exist', async () => {
    const path = join(tmp, 'absent.onnx');
    const error = await catchErrorAsync(() => OnnxModel.open(path));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toMatch(new RegExp(`${path}.*no such file`));
  });
});
