/**
 * torch.save reader. Oracles:
 *  - each HF baseline's `model.safetensors` (parsed here independently) must equal the tensors of
 *    its `pytorch_model.bin` bit for bit, and the README's tied aliases must hold the same values;
 *  - files written by the test writer, with expected values worked out here: IEEE bit patterns by
 *    hand, strided views by the index formula (byte = (offset + Σ i_k·stride_k)·itemsize);
 *  - facts stated in baselines/megatron-*\/README.md for the non-tensor entries.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import type { TensorRef } from '../../../src/weightmap/checkpoint.ts';
import { readTorchCheckpoint } from '../../../src/weightmap/readers/torch.ts';
import {
  contiguousStride, f32, Float, legacyBytes, Namespace, OrderedDict, Reduce, Storage, Tensor, Tuple, writeTorchZip, Global,
  type PValue,
} from './torch-writer.ts';
import { readRawSafetensors } from '../../support/raw-safetensors.ts';

const BASELINES = join(import.meta.dirname, '../../../baselines');
const tmp = mkdtempSync(join(tmpdir(), 'parity-torch-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


/** `- \`alias\` -> \`target\`` lines of the README's "Tied weights / aliases" section. */
function tiedAliases(readme: string): Map<string, string> {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Tied weights')) ?? '';
  return new Map([...section.matchAll(/^- `([^`]+)` -> `([^`]+)`/gm)].map((m) => [m[1], m[2]]));
}

/** The tensor's values as the bytes safetensors would store (F32 → float32 LE, I64 → int64 LE). */
function valueBytes(t: TensorRef): Buffer {
  if (t.dtype === 'F32') return Buffer.from(t.toFloat32().slice().buffer);
  if (t.dtype === 'I64') return Buffer.from(BigInt64Array.from(t.toInt32(), (v) => BigInt(v)).buffer);
  throw new Error(`unexpected dtype ${t.dtype}`);
}

describe.each(['bert', 'gpt2', 't5', 't5v11'])('baselines/%s/pytorch_model.bin', (model) => {
  const ckpt = readTorchCheckpoint(join(BASELINES, model, 'pytorch_model.bin'));
  const oracle = readRawSafetensors(join(BASELINES, model, 'model.safetensors'));
  const aliases = tiedAliases(readFileSync(join(BASELINES, model, 'README.md'), 'utf8'));

  it('is a torch-zip state dict with no other data', () => {
    expect(ckpt.format).toBe('torch-zip');
    expect(ckpt.meta).toEqual({});
  });

  it('holds exactly the safetensors tensors plus the README aliases', () => {
    expect(aliases.size).toBeGreaterThan(0);
    expect([...ckpt.tensors.keys()].sort()).toEqual([...oracle.keys(), ...aliases.keys()].sort());
  });

  it('matches model.safetensors bit for bit (dtype, shape, bytes)', () => {
    for (const [name, want] of oracle) {
      const t = ckpt.tensors.get(name)!;
      expect([name, t.dtype, t.shape]).toEqual([name, want.dtype, want.shape]);
      expect(valueBytes(t).equals(want.bytes), name).toBe(true);
    }
  });

  it('gives each tied alias the values of its target', () => {
    for (const [alias, target] of aliases) {
      const t = ckpt.tensors.get(alias)!;
      expect(t.shape).toEqual(oracle.get(target)!.shape);
      expect(valueBytes(t).equals(oracle.get(target)!.bytes), alias).toBe(true);
    }
  });
});

describe('float32 tensors of an in-memory file are views of it, not copies', () => {
  it('two tensors of one file share one ArrayBuffer', () => {
    const ckpt = readTorchCheckpoint(join(BASELINES, 'gpt2', 'pytorch_model.bin'));
    const a = ckpt.tensors.get('transformer.wte.weight')!.toFloat32();
    const b = ckpt.tensors.get('transformer.wpe.weight')!.toFloat32();
    expect(a.buffer).toBe(b.buffer);
    expect(a.buffer.byteLength).toBe(readFileSync(join(BASELINES, 'gpt2', 'pytorch_model.bin')).length);
  });
});

// ---------------------------------------------------------------------------------------------
// Files written here

let n = 0;
function write(obj: PValue, opts: Parameters<typeof writeTorchZip>[2] = {}): string {
  const p = join(tmp, `f${n++}.pt`);
  writeTorchZip(p, obj, opts);
  return p;
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('storage dtypes', () => {
  // Bit patterns and the values IEEE assigns them.
  const cases: [string, Storage, number[]][] = [
    ['Half', new Storage('Half', bytesOf(Uint16Array.from([0x3c00, 0xc000, 0x7c00, 0x0001, 0x7bff, 0x8000, 0x3555]))),
      [1, -2, Infinity, 2 ** -24, 65504, -0, 0.333251953125]],
    ['BFloat16', new Storage('BFloat16', bytesOf(Uint16Array.from([0x3f80, 0x4049, 0xff80, 0x0001]))), [1, 3.140625, -Infinity, 2 ** -133]],
    ['Double', new Storage('Double', bytesOf(Float64Array.from([0.1, -1e300]))), [Math.fround(0.1), -Infinity]],
    ['Long', new Storage('Long', bytesOf(BigInt64Array.from([-1n, 2n ** 40n, 7n]))), [-1, 2 ** 40, 7]],
    ['Int', new Storage('Int', bytesOf(Int32Array.from([-5, 2 ** 31 - 1]))), [-5, Math.fround(2 ** 31 - 1)]],
    ['Short', new Storage('Short', bytesOf(Int16Array.from([-32768, 1]))), [-32768, 1]],
    ['Char', new Storage('Char', Uint8Array.from([0xff, 0x7f])), [-1, 127]],
    ['Byte', new Storage('Byte', Uint8Array.from([0xff, 0x7f])), [255, 127]],
    ['Bool', new Storage('Bool', Uint8Array.from([0, 1, 1])), [0, 1, 1]],
  ];

  it.each(cases)('%s storages widen exactly to float32', (_cls, storage, want) => {
    const count = want.length;
    const ckpt = readTorchCheckpoint(write({ t: new Tensor(storage, 0, [count], [1]) }));
    const got = Array.from(ckpt.tensors.get('t')!.toFloat32());
    got.forEach((v, i) => expect(Object.is(v, want[i]) || v === want[i], `element ${i}: ${v} vs ${want[i]}`).toBe(true));
  });

  it('reports the DType of each storage class', () => {
    const ckpt = readTorchCheckpoint(write(new OrderedDict(cases.map(([cls, s, w]) => [cls, new Tensor(s, 0, [w.length], [1])]))));
    expect(Object.fromEntries([...ckpt.tensors].map(([k, t]) => [k, t.dtype]))).toEqual({
      Half: 'F16', BFloat16: 'BF16', Double: 'F64', Long: 'I64', Int: 'I32', Short: 'I16', Char: 'I8', Byte: 'U8', Bool: 'BOOL',
    });
  });

  it('toInt32 gives integers and refuses values outside int32', () => {
    const ok = new Storage('Long', bytesOf(BigInt64Array.from([-(2n ** 31n), 2n ** 31n - 1n])));
    const big = new Storage('Long', bytesOf(BigInt64Array.from([2n ** 31n])));
    const frac = new Storage('Float', bytesOf(Float32Array.from([0.5])));
    const ckpt = readTorchCheckpoint(write({ ok: new Tensor(ok, 0, [2], [1]), big: new Tensor(big, 0, [1], [1]), frac: new Tensor(frac, 0, [1], [1]) }));
    expect(Array.from(ckpt.tensors.get('ok')!.toInt32())).toEqual([-(2 ** 31), 2 ** 31 - 1]);
    expect(() => ckpt.tensors.get('big')!.toInt32()).toThrow(InputError);
    expect(() => ckpt.tensors.get('frac')!.toInt32()).toThrow(InputError);
  });

  it('_rebuild_tensor_v3 reads a dtype over an untyped byte storage', () => {
    const raw = bytesOf(Float32Array.from([1.5, -2.25, 8]));
    const ckpt = readTorchCheckpoint(write({ t: new Tensor(new Storage('Untyped', raw), 1, [2], [1], 'float32') }));
    const t = ckpt.tensors.get('t')!;
    expect([t.dtype, Array.from(t.toFloat32())]).toEqual(['F32', [-2.25, 8]]);
  });

  it('refuses quantized storages', () => {
    const pkl = Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('ctorch\nQInt8Storage\n.', 'latin1')]);
    expect(() => readTorchCheckpoint(write({}, { pickle: pkl }))).toThrow(/quantized tensors are not supported/);
  });
});

describe('views: storage + offset + size + stride', () => {
  // One 3×4 storage holding 0..11: element (r, c) of a view is storage[offset + r·s0 + c·s1].
  const base = new Storage('Float', bytesOf(Float32Array.from({ length: 12 }, (_, i) => i)));
  const views: [string, number, number[], number[]][] = [
    ['whole', 0, [3, 4], [4, 1]],
    ['transpose', 0, [4, 3], [1, 4]],
    ['row', 4, [4], [1]],
    ['column', 2, [3], [4]],
    ['block', 5, [2, 2], [4, 1]],
    ['every other', 1, [3, 2], [4, 2]],
    ['broadcast', 3, [2, 3], [0, 4]],
    ['scalar', 7, [], []],
    ['empty', 0, [0, 4], [4, 1]],
    ['empty, offset past the end', 100, [4, 0], [1, 1]],
    ['3-d', 0, [2, 2, 3], [1, 6, 2]],
  ];
  const ckpt = readTorchCheckpoint(write(new OrderedDict(views.map(([name, o, s, st]) => [name, new Tensor(base, o, s, st)]))));

  it.each(views)('%s', (name, offset, shape, stride) => {
    const want: number[] = [];
    const idx = new Array(shape.length).fill(0);
    const total = shape.reduce((a, b) => a * b, 1);
    for (let k = 0; k < total; k++) {
      want.push(offset + idx.reduce((acc, i, d) => acc + i * stride[d], 0));
      for (let d = shape.length - 1; d >= 0 && ++idx[d] === shape[d]; d--) idx[d] = 0;
    }
    const t = ckpt.tensors.get(name)!;
    expect(t.shape).toEqual(shape);
    expect(Array.from(t.toFloat32())).toEqual(want);
  });
});

describe('nested objects and meta', () => {
  const megatronLike = {
    args: new Namespace({
      hidden_size: 64,
      lr: new Float(1e-4),
      params_dtype: new Global('torch', 'float32'),
      model_type: new Reduce('megatron.model.enums', 'ModelType', [1]),
      loss_scale: new Float(Infinity),
      seed: 2n ** 70n,
    }),
    checkpoint_version: new Float(3),
    model: { language_model: { encoder: new OrderedDict([['layers.0.w', f32([1, 2], [2])]]) } },
    rng_state: [{ torch_rng_state: f32([9], [1]), seed: 5 }],
    flags: new Tuple([true, null, 'x']),
  };
  const ckpt = readTorchCheckpoint(write(megatronLike));

  it('keys tensors by their dotted path through dicts and lists', () => {
    expect([...ckpt.tensors.keys()]).toEqual(['model.language_model.encoder.layers.0.w', 'rng_state.0.torch_rng_state']);
    expect(Array.from(ckpt.tensors.get('model.language_model.encoder.layers.0.w')!.toFloat32())).toEqual([1, 2]);
  });

  it('turns the rest into plain JSON: Namespace → object, dtype → string, enum → {__enum__, value}', () => {
    expect(ckpt.meta).toEqual({
      args: {
        hidden_size: 64,
        lr: 1e-4,
        params_dtype: 'torch.float32',
        model_type: { __enum__: 'megatron.model.enums.ModelType', value: 1 },
        loss_scale: 'Infinity',
        seed: (2n ** 70n).toString(),
      },
      checkpoint_version: 3,
      rng_state: [{ seed: 5 }],
      flags: [true, null, 'x'],
    });
    expect(JSON.parse(JSON.stringify(ckpt.meta))).toEqual(ckpt.meta);
  });

  it('keeps a field named __proto__ as a field, not a prototype', () => {
    const meta = readTorchCheckpoint(write({ args: new Namespace({ ['__proto__']: { num_layers: 99 } }) })).meta;
    const args = meta.args as Record<string, unknown>;
    expect(Object.getPrototypeOf(args)).toBe(Object.prototype);
    expect(args.num_layers).toBeUndefined();
    expect(Object.keys(args)).toEqual(['__proto__']);
  });
});

describe('Megatron model_optim_rng.pt (facts from baselines/megatron-gpt2/README.md)', () => {
  const ckpt = readTorchCheckpoint(join(BASELINES, 'megatron-gpt2/tp1-v3/iter_0000000/mp_rank_00/model_optim_rng.pt'));
  const args = ckpt.meta.args as Record<string, unknown>;

  it('reads args as a plain object with the enum and the dtype global made data', () => {
    expect(args.model_type).toEqual({ __enum__: 'megatron.model.enums.ModelType', value: 1 });
    expect(args.params_dtype).toBe('torch.float32');
    expect([args.padded_vocab_size, args.make_vocab_size_divisible_by, args.layernorm_epsilon]).toEqual([1024, 128, 1e-5]);
  });

  it('keeps checkpoint_version, iteration and the scheduler', () => {
    expect([ckpt.meta.checkpoint_version, ckpt.meta.iteration]).toEqual([3, 0]);
    expect(Object.keys(ckpt.meta.opt_param_scheduler as object)).toEqual(
      expect.arrayContaining(['max_lr', 'lr_warmup_steps', 'num_steps', 'lr_decay_style', 'lr_decay_steps', 'min_lr']),
    );
  });

  it('exposes the RNG state: torch uint8[5056], cuda uint8[16], numpy MT19937 summarised', () => {
    const torchRng = ckpt.tensors.get('rng_state.0.torch_rng_state')!;
    expect([torchRng.dtype, torchRng.shape]).toEqual(['U8', [5056]]);
    expect(ckpt.tensors.get('rng_state.0.cuda_rng_state')!.shape).toEqual([16]);
    const np = (ckpt.meta.rng_state as Record<string, unknown>[])[0].np_rng_state as unknown[];
    expect(np[0]).toBe('MT19937');
    expect(np[1]).toEqual({ __ndarray__: { dtype: 'u4', shape: [624], bytes: 624 * 4 } });
  });

  it('keys the model by its nested dict path', () => {
    expect(ckpt.tensors.get('model.language_model.embedding.word_embeddings.weight')!.shape).toEqual([1024, 64]);
    expect(ckpt.tensors.get('model.language_model.encoder.layers.1.self_attention.query_key_value.weight')!.shape).toEqual([192, 64]);
  });
});

describe('other layouts', () => {
  const obj = new OrderedDict([
    ['a', f32([1, 2, 3, 4, 5, 6], [2, 3])],
    ['b', new Tensor(new Storage('Half', bytesOf(Uint16Array.from([0x3c00, 0x4000]))), 1, [1], [1])],
  ]);
  const want = { a: [1, 2, 3, 4, 5, 6], b: [2] };
  const values = (path: string, opts = {}) =>
    Object.fromEntries([...readTorchCheckpoint(path, opts).tensors].map(([k, t]) => [k, Array.from(t.toFloat32())]));

  it('reads the legacy (pre-1.6) stream format', () => {
    const p = join(tmp, 'legacy.pt');
    writeFileSync(p, legacyBytes(obj));
    expect(readTorchCheckpoint(p).format).toBe('torch-legacy');
    expect(values(p)).toEqual(want);
  });

  it('reads storages per record when the file is not held in memory', () => {
    expect(values(write(obj), { wholeFileLimit: 0 })).toEqual(want);
  });

  it('reads big-endian storages when the byteorder record says so', () => {
    const be = (a: Float32Array) => {
      const b = Buffer.from(a.buffer.slice(0));
      b.swap32();
      return new Uint8Array(b);
    };
    const t = new Tensor(new Storage('Float', be(Float32Array.from([1.5, -3]))), 0, [2], contiguousStride([2]));
    const p = write({ t }, { extra: [{ name: 'byteorder', data: new TextEncoder().encode('big') }] });
    expect(values(p)).toEqual({ t: [1.5, -3] });
  });

  it('names the file when it is a tar (very old torch) or not torch at all', () => {
    const tar = Buffer.alloc(1024);
    tar.write('ustar', 257, 'latin1');
    const p = join(tmp, 'old.tar.pt');
    writeFileSync(p, tar);
    expect(() => readTorchCheckpoint(p)).toThrow(new RegExp(`^${p}: tar-format`));
    const q = join(tmp, 'text.pt');
    writeFileSync(q, 'hello');
    expect(() => readTorchCheckpoint(q)).toThrow(new RegExp(`^${q}: not a torch checkpoint`));
  });
});
