/**
 * Megatron legacy folders. Oracles:
 *  - every variant in baselines/megatron-{gpt2,bert} must merge to exactly the tensors of the
 *    single-rank v3 file, read here straight through the torch reader (v3 rows are already in
 *    the canonical [np, 3, hn] order), names equal up to the 2023-09 norm rename;
 *  - the merged tensors must equal the HF weights in hf_padded_vpad1024.safetensors (parsed here)
 *    by the relations in each README, QKV split by the table's formula;
 *  - synthetic folders written here from a known global model, sharded by the rules of
 *    FORMATS.md §6–§8 (row formulas written out below), for TP×PP grids, v0/v1, SwiGLU and
 *    cross-attention the baselines do not cover, and for every error the reader must raise.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import type { Checkpoint } from '../../../src/weightmap/checkpoint.ts';
import { readMegatronCheckpoint } from '../../../src/weightmap/readers/megatron.ts';
import { readTorchCheckpoint } from '../../../src/weightmap/readers/torch.ts';
import { f32, Float, Global, Namespace, OrderedDict, Reduce, writeTorchZip, type PValue, type Tensor } from './torch-writer.ts';

const BASELINES = join(import.meta.dirname, '../../../baselines');
const tmp = mkdtempSync(join(tmpdir(), 'parity-megatron-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Variant {
  dir: string;
  tensor_model_parallel_size: number;
  pipeline_model_parallel_size: number;
  checkpoint_version: number | null;
  padded_vocab_size: number;
  files: { path: string }[];
}

const FAMILIES = ['megatron-gpt2', 'megatron-bert'] as const;
const variants = FAMILIES.flatMap((family) =>
  (JSON.parse(readFileSync(join(BASELINES, family, 'variants.json'), 'utf8')).variants as Variant[]).map((v) => ({ family, ...v })),
);

/** The 2023-09-08 rename, undone (README: Megatron reads old files with key.replace('layernorm', 'norm')). */
const toLayernorm = (name: string) =>
  name.replace(/\b(input|post_attention|post_inter_attention|final)_norm\./, '$1_layernorm.').replace(/^lm_head\.norm\./, 'lm_head.layernorm.');

function values(c: Checkpoint): Map<string, Float32Array> {
  return new Map([...c.tensors].map(([k, t]) => [k, t.toFloat32()]));
}

/** The single-rank v3 file, through the torch reader only. */
function referenceTensors(family: string): Map<string, Float32Array> {
  const raw = readTorchCheckpoint(join(BASELINES, family, 'tp1-v3/iter_0000000/mp_rank_00/model_optim_rng.pt'));
  const out = new Map<string, Float32Array>();
  for (const [name, t] of raw.tensors) if (name.startsWith('model.')) out.set(name.slice('model.'.length), t.toFloat32());
  return out;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

describe.each(variants)('baselines/$family/$dir', (v) => {
  const ckpt = readMegatronCheckpoint(join(BASELINES, v.family, v.dir));
  const ref = referenceTensors(v.family);

  it('merges to exactly the single-rank v3 tensors', () => {
    const got = values(ckpt);
    expect([...got.keys()].map(toLayernorm).sort()).toEqual([...ref.keys()].sort());
    for (const [name, a] of got) expect(bitsEqual(a, ref.get(toLayernorm(name))!), name).toBe(true);
  });

  it('reports the layout variants.json lists', () => {
    expect(ckpt.format).toBe('megatron');
    expect(ckpt.meta).toMatchObject({
      checkpoint_version: v.checkpoint_version ?? 0,
      iteration: 0,
      tensorParallel: v.tensor_model_parallel_size,
      pipelineParallel: v.pipeline_model_parallel_size,
      paddedVocabSize: v.padded_vocab_size,
      files: v.files.map((f) => join(BASELINES, v.family, v.dir, f.path)),
    });
    expect((ckpt.meta.args as Record<string, unknown>).num_attention_heads).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------
// Against the HF weights

function readSafetensorsOracle(path: string): Map<string, { shape: number[]; values: Float32Array }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__' || e.dtype !== 'F32') continue;
    const bytes = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    out.set(name, { shape: e.shape, values: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) });
  }
  return out;
}

const H = 64, HEADS = 4, HN = 16;
/** Canonical row of (which ∈ q,k,v; head j; d): the [np, 3, hn] order, README's v2/v3 formula. */
const qkvRow = (w: number, j: number, d: number) => j * 3 * HN + w * HN + d;

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

describe('megatron-gpt2 vs HF GPT-2 (hf_padded_vpad1024.safetensors)', () => {
  const hf = readSafetensorsOracle(join(BASELINES, 'megatron-gpt2/hf_padded_vpad1024.safetensors'));
  const m = values(readMegatronCheckpoint(join(BASELINES, 'megatron-gpt2/tp2-v3')));
  const L = (i: number, s: string) => m.get(`language_model.encoder.layers.${i}.${s}`)!;

  it('splits the fused QKV into HF c_attn columns (Conv1D [in, 3h], q|k|v blocks of heads)', () => {
    for (let i = 0; i < 2; i++) {
      const w = hf.get(`transformer.h.${i}.attn.c_attn.weight`)!.values; // [64, 192]
      const b = hf.get(`transformer.h.${i}.attn.c_attn.bias`)!.values;
      const qkvW = L(i, 'self_attention.query_key_value.weight'); // [192, 64]
      const qkvB = L(i, 'self_attention.query_key_value.bias');
      for (let which = 0; which < 3; which++) {
        for (let j = 0; j < HEADS; j++) {
          for (let d = 0; d < HN; d++) {
            const col = which * H + j * HN + d;
            const row = qkvRow(which, j, d);
            expect(qkvB[row]).toBe(b[col]);
            for (let x = 0; x < H; x++) expect(qkvW[row * H + x]).toBe(w[x * 3 * H + col]);
          }
        }
      }
    }
  });

  it('matches every other HF tensor (linears transposed to Conv1D)', () => {
    const same: [string, Float32Array][] = [
      ['transformer.wte.weight', m.get('language_model.embedding.word_embeddings.weight')!],
      ['transformer.wpe.weight', m.get('language_model.embedding.position_embeddings.weight')!],
      ['transformer.ln_f.weight', m.get('language_model.encoder.final_layernorm.weight')!],
      ['transformer.ln_f.bias', m.get('language_model.encoder.final_layernorm.bias')!],
    ];
    for (let i = 0; i < 2; i++) {
      same.push(
        [`transformer.h.${i}.ln_1.weight`, L(i, 'input_layernorm.weight')],
        [`transformer.h.${i}.ln_1.bias`, L(i, 'input_layernorm.bias')],
        [`transformer.h.${i}.ln_2.weight`, L(i, 'post_attention_layernorm.weight')],
        [`transformer.h.${i}.ln_2.bias`, L(i, 'post_attention_layernorm.bias')],
        [`transformer.h.${i}.attn.c_proj.weight`, transpose(L(i, 'self_attention.dense.weight'), H, H)],
        [`transformer.h.${i}.attn.c_proj.bias`, L(i, 'self_attention.dense.bias')],
        [`transformer.h.${i}.mlp.c_fc.weight`, transpose(L(i, 'mlp.dense_h_to_4h.weight'), 256, H)],
        [`transformer.h.${i}.mlp.c_fc.bias`, L(i, 'mlp.dense_h_to_4h.bias')],
        [`transformer.h.${i}.mlp.c_proj.weight`, transpose(L(i, 'mlp.dense_4h_to_h.weight'), H, 256)],
        [`transformer.h.${i}.mlp.c_proj.bias`, L(i, 'mlp.dense_4h_to_h.bias')],
      );
    }
    expect(same.length + 4).toBe(hf.size); // + c_attn weight and bias of both layers
    for (const [name, a] of same) expect(bitsEqual(a, hf.get(name)!.values), name).toBe(true);
  });
});

describe('megatron-bert vs HF MegatronBert (hf_padded_vpad1024.safetensors)', () => {
  const hf = readSafetensorsOracle(join(BASELINES, 'megatron-bert/hf_padded_vpad1024.safetensors'));
  const m = values(readMegatronCheckpoint(join(BASELINES, 'megatron-bert/tp2-v3')));
  const L = (i: number, s: string) => m.get(`language_model.encoder.layers.${i}.${s}`)!;

  it('splits the fused QKV into HF query/key/value ([out, in], rows of heads)', () => {
    for (let i = 0; i < 2; i++) {
      const qkvW = L(i, 'self_attention.query_key_value.weight');
      const qkvB = L(i, 'self_attention.query_key_value.bias');
      ['query', 'key', 'value'].forEach((part, which) => {
        const w = hf.get(`bert.encoder.layer.${i}.attention.self.${part}.weight`)!.values;
        const b = hf.get(`bert.encoder.layer.${i}.attention.self.${part}.bias`)!.values;
        for (let j = 0; j < HEADS; j++) {
          for (let d = 0; d < HN; d++) {
            const row = qkvRow(which, j, d);
            expect(qkvB[row]).toBe(b[j * HN + d]);
            for (let x = 0; x < H; x++) expect(qkvW[row * H + x]).toBe(w[(j * HN + d) * H + x]);
          }
        }
      });
    }
  });

  it('matches every other HF tensor by the README name table', () => {
    const same: [string, string][] = [
      ['bert.embeddings.word_embeddings.weight', 'language_model.embedding.word_embeddings.weight'],
      ['bert.embeddings.position_embeddings.weight', 'language_model.embedding.position_embeddings.weight'],
      ['bert.embeddings.token_type_embeddings.weight', 'language_model.embedding.tokentype_embeddings.weight'],
      ['bert.encoder.ln.weight', 'language_model.encoder.final_layernorm.weight'],
      ['bert.encoder.ln.bias', 'language_model.encoder.final_layernorm.bias'],
      ['bert.pooler.dense.weight', 'language_model.pooler.dense.weight'],
      ['bert.pooler.dense.bias', 'language_model.pooler.dense.bias'],
      ['cls.predictions.bias', 'lm_head.bias'],
      ['cls.predictions.transform.dense.weight', 'lm_head.dense.weight'],
      ['cls.predictions.transform.dense.bias', 'lm_head.dense.bias'],
      ['cls.predictions.transform.LayerNorm.weight', 'lm_head.layernorm.weight'],
      ['cls.predictions.transform.LayerNorm.bias', 'lm_head.layernorm.bias'],
      ['cls.seq_relationship.weight', 'binary_head.weight'],
      ['cls.seq_relationship.bias', 'binary_head.bias'],
    ];
    const layer: [string, string][] = [
      ['attention.ln', 'input_layernorm'],
      ['attention.output.dense', 'self_attention.dense'],
      ['ln', 'post_attention_layernorm'],
      ['intermediate.dense', 'mlp.dense_h_to_4h'],
      ['output.dense', 'mlp.dense_4h_to_h'],
    ];
    for (let i = 0; i < 2; i++) {
      for (const [h, g] of layer) {
        for (const p of ['weight', 'bias']) same.push([`bert.encoder.layer.${i}.${h}.${p}`, `language_model.encoder.layers.${i}.${g}.${p}`]);
      }
    }
    expect(same.length + 12).toBe(hf.size); // + query/key/value weight and bias of both layers
    for (const [h, g] of same) expect(bitsEqual(m.get(g)!, hf.get(h)!.values), `${h} <- ${g}`).toBe(true);
    expect(m.size).toBe(same.length + 4); // every merged tensor is accounted for (4 = QKV weight/bias × 2 layers)
  });
});

// ---------------------------------------------------------------------------------------------
// Synthetic folders

type Kind = 'qkv' | 'kv' | 'column' | 'row' | 'replicated' | 'swiglu';

interface GlobalTensor {
  name: string;
  shape: number[];
  kind: Kind;
  values: Float32Array;
}

interface Spec {
  tp: number;
  pp: number;
  version: 0 | 1 | 3;
  era?: '2020' | '2306' | '2309';
  swiglu?: boolean;
  decoder?: boolean;
  layers?: number;
}

const h = 8, heads = 4, hn = 2, ffn = 16, vocab = 32;

/** A model whose every element is distinct (tensor index · 1000 + element), so a misplaced row shows. */
function globalModel(spec: Spec): GlobalTensor[] {
  const L = spec.layers ?? 4;
  const out: GlobalTensor[] = [];
  const add = (name: string, shape: number[], kind: Kind) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const k = out.length + 1;
    out.push({ name, shape, kind, values: Float32Array.from({ length: n }, (_, e) => k * 1000 + e) });
  };
  add('language_model.embedding.word_embeddings.weight', [vocab, h], 'column');
  add('language_model.embedding.position_embeddings.weight', [16, h], 'replicated');
  const stacks = spec.decoder ? ['encoder', 'decoder'] : ['encoder'];
  for (const stack of stacks) {
    for (let i = 0; i < L; i++) {
      const p = `language_model.${stack}.layers.${i}.`;
      add(`${p}input_layernorm.weight`, [h], 'replicated');
      add(`${p}self_attention.query_key_value.weight`, [3 * h, h], 'qkv');
      add(`${p}self_attention.query_key_value.bias`, [3 * h], 'qkv');
      add(`${p}self_attention.dense.weight`, [h, h], 'row');
      add(`${p}self_attention.dense.bias`, [h], 'replicated');
      add(`${p}post_attention_layernorm.weight`, [h], 'replicated');
      if (stack === 'decoder') {
        add(`${p}inter_attention.query.weight`, [h, h], 'column');
        add(`${p}inter_attention.key_value.weight`, [2 * h, h], 'kv');
        add(`${p}inter_attention.key_value.bias`, [2 * h], 'kv');
        add(`${p}inter_attention.dense.weight`, [h, h], 'row');
        add(`${p}post_inter_attention_layernorm.weight`, [h], 'replicated');
      }
      add(`${p}mlp.dense_h_to_4h.weight`, [spec.swiglu ? 2 * ffn : ffn, h], spec.swiglu ? 'swiglu' : 'column');
      add(`${p}mlp.dense_4h_to_h.weight`, [h, ffn], 'row');
    }
    add(`language_model.${stack}.final_layernorm.weight`, [h], 'replicated');
  }
  if (spec.decoder) add('lm_head.bias', [vocab], 'column');
  return out;
}

/** Rows [r0, r1) of a [rows, rowLen] tensor. */
const rows = (t: GlobalTensor, r0: number, r1: number) => {
  const len = t.values.length / t.shape[0];
  return t.values.subarray(r0 * len, r1 * len);
};

/** Rank t's shard, stored as Megatron writes it (FORMATS.md §7–§8). */
function shardOf(g: GlobalTensor, t: number, T: number, version: number): { shape: number[]; values: Float32Array } {
  const rowLen = g.values.length / g.shape[0];
  switch (g.kind) {
    case 'replicated':
      return { shape: g.shape, values: g.values };
    case 'column': {
      const n = g.shape[0] / T;
      return { shape: [n, ...g.shape.slice(1)], values: rows(g, t * n, (t + 1) * n) };
    }
    case 'swiglu': {
      const half = g.shape[0] / 2, n = half / T;
      const w = rows(g, t * n, (t + 1) * n), v = rows(g, half + t * n, half + (t + 1) * n);
      const out = new Float32Array(w.length * 2);
      out.set(w, 0);
      out.set(v, w.length);
      return { shape: [2 * n, ...g.shape.slice(1)], values: out };
    }
    case 'row': {
      const [r, c] = g.shape, n = c / T;
      const out = new Float32Array(r * n);
      for (let i = 0; i < r; i++) out.set(g.values.subarray(i * c + t * n, i * c + (t + 1) * n), i * n);
      return { shape: [r, n], values: out };
    }
    case 'qkv':
    case 'kv': {
      const parts = g.kind === 'qkv' ? 3 : 2;
      const npr = heads / T;
      const out = new Float32Array(parts * npr * hn * rowLen);
      for (let j = 0; j < npr; j++) {
        for (let w = 0; w < parts; w++) {
          for (let d = 0; d < hn; d++) {
            const canonical = ((t * npr + j) * parts + w) * hn + d; // global [np, parts, hn]
            const stored =
              version === 0 ? (w * npr + j) * hn + d // [parts, np, hn]
                : version === 1 ? (j * hn + d) * parts + w // [np, hn, parts]
                  : (j * parts + w) * hn + d; // [np, parts, hn]
            out.set(g.values.subarray(canonical * rowLen, (canonical + 1) * rowLen), stored * rowLen);
          }
        }
      }
      return { shape: [parts * npr * hn, ...g.shape.slice(1)], values: out };
    }
  }
}

/** The name as a file of that era spells it. */
function eraName(name: string, era: Spec['era']): string {
  if (era === '2020') return name.replace('language_model.encoder.', 'language_model.transformer.').replace('.self_attention.', '.attention.');
  if (era === '2309') return name.replace(/(input|post_attention|post_inter_attention|final)_layernorm/, '$1_norm');
  return name;
}

/** Megatron's nesting: embedding sub-modules and stacks are dicts, stacks flat inside. */
function nestModel(flat: Map<string, Tensor>): PValue {
  const model: Record<string, Record<string, PValue>> = {};
  for (const [name, t] of flat) {
    const stack = /^language_model\.(encoder|decoder|transformer)\.(.+)$/.exec(name);
    const emb = /^language_model\.embedding\.([^.]+)\.(.+)$/.exec(name);
    const [top, sub, rest] = stack ? ['language_model', stack[1], stack[2]] : emb ? ['language_model', 'embedding', `${emb[1]}.${emb[2]}`] : [name.split('.')[0], '', name.split('.').slice(1).join('.')];
    model[top] ??= {};
    const holder = sub ? ((model[top][sub] ??= new OrderedDict([])) as OrderedDict) : null;
    if (holder) holder.entries.push([rest, t]);
    else model[top][rest] = t;
  }
  return model;
}

type Mutator = (ctx: { tp: number; pp: number; flat: Map<string, Tensor>; args: Record<string, PValue> }) => void;

function writeFolder(dir: string, spec: Spec, mutate?: Mutator): GlobalTensor[] {
  const model = globalModel(spec);
  const L = spec.layers ?? 4;
  const perStage = L / spec.pp;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest_checkpointed_iteration.txt'), '7\n');
  for (let pp = 0; pp < spec.pp; pp++) {
    for (let tp = 0; tp < spec.tp; tp++) {
      const flat = new Map<string, Tensor>();
      for (const g of model) {
        const layer = /\.layers\.(\d+)\./.exec(g.name);
        let local = g.name;
        if (layer) {
          const i = Number(layer[1]);
          if (Math.floor(i / perStage) !== pp) continue;
          local = g.name.replace(`.layers.${i}.`, `.layers.${i - pp * perStage}.`);
        } else if (g.name.startsWith('language_model.embedding.') && pp !== 0) continue;
        else if (!g.name.startsWith('language_model.embedding.') && pp !== spec.pp - 1) continue;
        const s = shardOf(g, tp, spec.tp, spec.version);
        flat.set(eraName(local, spec.era), f32(s.values, s.shape));
      }
      if (spec.pp > 1 && pp === spec.pp - 1) {
        const s = shardOf(model[0], tp, spec.tp, spec.version); // the tied copy of word embeddings
        flat.set('word_embeddings_for_head.weight', f32(s.values, s.shape));
      }
      const args: Record<string, PValue> = {
        num_layers: L,
        hidden_size: h,
        ffn_hidden_size: ffn,
        num_attention_heads: heads,
        kv_channels: hn,
        padded_vocab_size: vocab,
        tensor_model_parallel_size: spec.tp,
        pipeline_model_parallel_size: spec.pp,
        swiglu: spec.swiglu ?? false,
        params_dtype: new Global('torch', 'float32'),
        model_type: new Reduce('megatron.model.enums', 'ModelType', [spec.decoder ? 2 : 1]),
        rank: pp * spec.tp + tp,
        local_rank: pp * spec.tp + tp,
      };
      mutate?.({ tp, pp, flat, args });
      const top: Record<string, PValue> = { args: new Namespace(args), iteration: 7, model: nestModel(flat) };
      if (spec.version !== 0) top.checkpoint_version = new Float(spec.version);
      const rankDir = join(dir, 'iter_0000007', spec.pp > 1 ? `mp_rank_${String(tp).padStart(2, '0')}_${String(pp).padStart(3, '0')}` : `mp_rank_${String(tp).padStart(2, '0')}`);
      mkdirSync(rankDir, { recursive: true });
      writeTorchZip(join(rankDir, 'model_optim_rng.pt'), top, { top: 'model_optim_rng' });
    }
  }
  return model;
}

let folders = 0;
const newDir = () => join(tmp, `ckpt${folders++}`);

describe.each<Spec>([
  { tp: 4, pp: 1, version: 0, era: '2020' },
  { tp: 4, pp: 1, version: 1, era: '2020' },
  { tp: 2, pp: 2, version: 3 },
  { tp: 1, pp: 4, version: 3, era: '2309' },
  { tp: 2, pp: 1, version: 3, swiglu: true },
  { tp: 2, pp: 1, version: 3, decoder: true, layers: 2 },
  { tp: 2, pp: 1, version: 0, decoder: true, layers: 2 },
])('synthetic tp$tp pp$pp v$version era $era swiglu $swiglu decoder $decoder', (spec) => {
  const dir = newDir();
  const model = writeFolder(dir, spec);
  const ckpt = readMegatronCheckpoint(dir);

  it('merges every shard back into the global model, QKV/KV in [np, parts, hn]', () => {
    const want = new Map(model.map((g) => [spec.era === '2309' ? eraName(g.name, '2309') : g.name, g]));
    expect([...ckpt.tensors.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, t] of ckpt.tensors) {
      expect(t.shape, name).toEqual(want.get(name)!.shape);
      expect(Array.from(t.toFloat32()), name).toEqual(Array.from(want.get(name)!.values));
    }
  });

  it('reports iteration, parallel sizes and version', () => {
    expect(ckpt.meta).toMatchObject({ iteration: 7, tensorParallel: spec.tp, pipelineParallel: spec.pp, checkpoint_version: spec.version, paddedVocabSize: vocab });
    expect((ckpt.meta.files as string[]).length).toBe(spec.tp * spec.pp);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

function expectInputError(fn: () => unknown, ...mustContain: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  for (const s of mustContain) expect((err as Error).message).toContain(s);
}

describe('folder errors', () => {
  it('a folder without the tracker', () => {
    const dir = newDir();
    mkdirSync(dir);
    expectInputError(() => readMegatronCheckpoint(dir), join(dir, 'latest_checkpointed_iteration.txt'));
  });

  it('a tracker that is neither a number nor release', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 1, pp: 1, version: 3, layers: 1 });
    writeFileSync(join(dir, 'latest_checkpointed_iteration.txt'), 'latest');
    expectInputError(() => readMegatronCheckpoint(dir), 'latest');
  });

  it('a tracker naming an iteration folder that is not there', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 1, pp: 1, version: 3, layers: 1 });
    writeFileSync(join(dir, 'latest_checkpointed_iteration.txt'), '8');
    expectInputError(() => readMegatronCheckpoint(dir), join(dir, 'iter_0000008'));
  });

  it('a release tracker reads release/', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 1, pp: 1, version: 3, layers: 1 });
    renameSync(join(dir, 'iter_0000007'), join(dir, 'release'));
    writeFileSync(join(dir, 'latest_checkpointed_iteration.txt'), 'release');
    expect(readMegatronCheckpoint(dir).tensors.size).toBeGreaterThan(0);
  });

  it('no rank folders', () => {
    const dir = newDir();
    mkdirSync(join(dir, 'iter_0000007'), { recursive: true });
    writeFileSync(join(dir, 'latest_checkpointed_iteration.txt'), '7');
    expectInputError(() => readMegatronCheckpoint(dir), 'no mp_rank_XX folders');
  });

  it('a missing middle rank (mp_rank_00 and mp_rank_02, no mp_rank_01)', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 4, pp: 1, version: 3, layers: 1 });
    rmSync(join(dir, 'iter_0000007/mp_rank_01'), { recursive: true });
    rmSync(join(dir, 'iter_0000007/mp_rank_03'), { recursive: true });
    expectInputError(() => readMegatronCheckpoint(dir), 'mp_rank_01', join(dir, 'iter_0000007/mp_rank_01'));
  });

  it('a missing pipeline stage', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 2, pp: 2, version: 3, layers: 2 });
    rmSync(join(dir, 'iter_0000007/mp_rank_01_001'), { recursive: true });
    expectInputError(() => readMegatronCheckpoint(dir), 'mp_rank_01_001');
  });

  it('a rank folder without model_optim_rng.pt', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 });
    rmSync(join(dir, 'iter_0000007/mp_rank_01/model_optim_rng.pt'));
    expectInputError(() => readMegatronCheckpoint(dir), join(dir, 'iter_0000007/mp_rank_01/model_optim_rng.pt'));
  });

  it('mixed mp_rank_XX and mp_rank_XX_YYY folders', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 });
    cpSync(join(dir, 'iter_0000007/mp_rank_01'), join(dir, 'iter_0000007/mp_rank_00_001'), { recursive: true });
    expectInputError(() => readMegatronCheckpoint(dir), 'mix of');
  });

  it('virtual-pipeline files (model0, model1, …)', () => {
    const dir = newDir();
    mkdirSync(join(dir, 'iter_0000007/mp_rank_00'), { recursive: true });
    writeFileSync(join(dir, 'latest_checkpointed_iteration.txt'), '7');
    const chunk = { language_model: { encoder: new OrderedDict([['layers.0.input_layernorm.weight', f32([1], [1])]]) } };
    const path = join(dir, 'iter_0000007/mp_rank_00/model_optim_rng.pt');
    writeTorchZip(path, { args: new Namespace({ num_attention_heads: 1, hidden_size: 1 }), model0: chunk, model1: chunk });
    expectInputError(() => readMegatronCheckpoint(dir), 'virtual-pipeline', path);
  });

  it('expert-parallel folders', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 1, pp: 1, version: 3, layers: 1 });
    renameSync(join(dir, 'iter_0000007/mp_rank_00'), join(dir, 'iter_0000007/mp_rank_00_000_000'));
    expectInputError(() => readMegatronCheckpoint(dir), 'expert-parallel');
  });
});

describe('content errors name the offending file', () => {
  const rank1 = (dir: string, pp = '') => join(dir, `iter_0000007/mp_rank_01${pp}/model_optim_rng.pt`);

  it('args that differ between ranks', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 }, ({ tp, args }) => {
      if (tp === 1) args.hidden_size = 16;
    });
    expectInputError(() => readMegatronCheckpoint(dir), 'args.hidden_size', rank1(dir));
  });

  it('a shard whose shape differs from rank 0', () => {
    const dir = newDir();
    const name = 'language_model.encoder.layers.0.mlp.dense_h_to_4h.weight';
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 }, ({ tp, flat }) => {
      if (tp === 1) flat.set(name, f32(new Float32Array(9 * h), [9, h]));
    });
    expectInputError(() => readMegatronCheckpoint(dir), name, rank1(dir), '[9,8]');
  });

  it('a replicated tensor that differs between ranks', () => {
    const dir = newDir();
    const name = 'language_model.encoder.layers.0.input_layernorm.weight';
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 }, ({ tp, flat }) => {
      if (tp === 1) flat.set(name, f32(new Float32Array(h).fill(0.5), [h]));
    });
    expectInputError(() => readMegatronCheckpoint(dir), name, rank1(dir), 'differs');
  });

  it('a tensor present on one rank only', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 }, ({ tp, flat }) => {
      if (tp === 0) flat.set('language_model.pooler.dense.bias', f32(new Float32Array(h), [h]));
    });
    expectInputError(() => readMegatronCheckpoint(dir), 'language_model.pooler.dense.bias', rank1(dir));
  });

  it('args.tensor_model_parallel_size that disagrees with the folders', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 }, ({ args }) => {
      args.tensor_model_parallel_size = 4;
    });
    expectInputError(() => readMegatronCheckpoint(dir), 'tensor_model_parallel_size');
  });

  it('a QKV whose rows do not match heads × head size', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 1, pp: 1, version: 0, layers: 1 }, ({ args }) => {
      args.num_attention_heads = 2;
      args.kv_channels = 3;
    });
    expectInputError(() => readMegatronCheckpoint(dir), 'query_key_value', '18 rows');
  });

  it('merged word embeddings that are not args.padded_vocab_size rows', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 2, pp: 1, version: 3, layers: 1 }, ({ args }) => {
      args.padded_vocab_size = 48;
    });
    expectInputError(() => readMegatronCheckpoint(dir), 'padded_vocab_size', '48 rows');
  });

  it('stage layer counts that do not add up to args.num_layers', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 1, pp: 2, version: 3, layers: 4 }, ({ args }) => {
      args.num_layers = 6;
    });
    expectInputError(() => readMegatronCheckpoint(dir), 'has 4 layers over all stages, args say 6');
  });

  it('a gap in a stage’s layer indices', () => {
    const dir = newDir();
    writeFolder(dir, { tp: 1, pp: 1, version: 3, layers: 3 }, ({ flat }) => {
      for (const k of [...flat.keys()]) if (k.includes('.layers.1.')) flat.delete(k);
    });
    expectInputError(() => readMegatronCheckpoint(dir), 'gaps');
  });
});
