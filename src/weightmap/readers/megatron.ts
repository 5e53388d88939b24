/**
 * Megatron-LM legacy checkpoint folders (FORMATS.md §6–§8) as ONE merged state dict.
 *
 *   <dir>/latest_checkpointed_iteration.txt         "1000" | "0" | "release"
 *   <dir>/iter_0001000/mp_rank_{tp:02d}[_{pp:03d}]/model_optim_rng.pt     (or <dir>/release/…)
 *
 * Canonical names are the dotted paths inside `model`, spelled as Megatron 23.06 spells them:
 * `language_model.embedding.word_embeddings.weight`, `language_model.encoder.layers.{i}.
 * self_attention.query_key_value.weight`, `lm_head.bias`, `binary_head.weight`. 2020 files'
 * `language_model.transformer.` and `layers.{i}.attention.` are renamed to those; `*layernorm*`
 * and the 2023-09 `*norm*` names are kept as stored (maps accept both).
 *
 * Merging follows Megatron's own loader rules: column-parallel shards concatenate on dim 0,
 * row-parallel weights on dim 1, everything else is replicated (and must be equal on every
 * rank); pipeline stages' local layer indices become global; `word_embeddings_for_head` (the
 * last stage's tied copy) is dropped; the padded vocabulary is kept. Fused QKV rows are brought
 * to ONE order, checkpoint_version ≥ 2's `[np, 3, hn]` over all heads, by upgrading each rank's
 * block first (Megatron upgrades v0/v1 per rank on load) and concatenating after.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { numel, shapeString, type Checkpoint, type DType, type TensorRef } from '../checkpoint.ts';
import { InputError } from '../../errors.ts';
import { readTorchCheckpoint } from './torch.ts';

export const TRACKER = 'latest_checkpointed_iteration.txt';
const CKPT_FILE = 'model_optim_rng.pt';
/** Fields that legitimately differ between the files of one checkpoint. */
const PER_RANK_ARGS = new Set(['rank', 'local_rank']);

interface RankFile {
  tp: number;
  pp: number;
  path: string;
  args: Record<string, unknown>;
  version: number;
  iteration: unknown;
  /** Canonical (renamed, stage-local) name → tensor. */
  tensors: Map<string, TensorRef>;
}

export function readMegatronCheckpoint(dir: string): Checkpoint {
  const { iterDir, release } = readTracker(dir);
  const grid = findRankDirs(iterDir);
  const files = grid.map(({ tp, pp, path }) => loadRank(tp, pp, path));
  const first = files[0];
  for (const f of files.slice(1)) checkSameRun(first, f);
  const tpSize = Math.max(...files.map((f) => f.tp)) + 1;
  const ppSize = Math.max(...files.map((f) => f.pp)) + 1;
  checkParallelArgs(first, tpSize, ppSize);

  const heads = intArg(first, 'num_attention_heads');
  const hidden = intArg(first, 'hidden_size');
  const hn = typeof first.args.kv_channels === 'number' ? (first.args.kv_channels as number) : hidden / heads;
  if (heads % tpSize !== 0) {
    throw new InputError('attention heads do not split evenly over the tensor-parallel ranks', {
      file: first.path,
      expected: `num_attention_heads divisible by ${tpSize}`,
      actual: `${heads}`,
    });
  }
  if (first.args.group_query_attention === true) {
    throw new InputError('grouped-query attention checkpoints are not supported by the legacy reader', { file: first.path });
  }
  const geometry: QkvGeometry = { headsPerRank: heads / tpSize, hn, version: first.version };

  const stages = renumberStages(files, ppSize, tpSize);
  const tensors = new Map<string, TensorRef>();
  for (const [name, shards] of stages) {
    tensors.set(name, mergeShards(name, shards, geometry, first.args.swiglu === true));
  }

  const paddedVocab = checkVocab(tensors, first);
  return {
    format: 'megatron',
    path: dir,
    tensors,
    meta: {
      args: first.args,
      checkpoint_version: first.version,
      iteration: first.iteration ?? (release ? 'release' : null),
      tensorParallel: tpSize,
      pipelineParallel: ppSize,
      paddedVocabSize: paddedVocab,
      files: files.map((f) => f.path),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Folder layout

function readTracker(dir: string): { iterDir: string; release: boolean } {
  const tracker = join(dir, TRACKER);
  if (!existsSync(tracker)) {
    throw new InputError(`not a Megatron checkpoint folder: ${TRACKER} is missing`, { file: tracker, expected: 'the tracker file save_checkpoint writes' });
  }
  const text = readFileSync(tracker, 'utf8').trim();
  let name: string;
  if (text === 'release') name = 'release';
  // Megatron's own read_metadata asserts iteration > 0 unless release; 0 is accepted here on
  // purpose: initial-weight checkpoints (iteration 0) are exactly what alignment starts from.
  else if (/^\d+$/.test(text)) name = `iter_${String(Number(text)).padStart(7, '0')}`; // save_checkpoint: 'iter_{:07d}'
  else throw new InputError('tracker holds neither an iteration number nor "release"', { file: tracker, expected: 'digits or release', actual: JSON.stringify(text.slice(0, 40)) });
  const iterDir = join(dir, name);
  if (!existsSync(iterDir) || !statSync(iterDir).isDirectory()) {
    throw new InputError(`the tracker names ${name}/, which does not exist`, { file: iterDir });
  }
  return { iterDir, release: name === 'release' };
}

function findRankDirs(iterDir: string): { tp: number; pp: number; path: string }[] {
  const found: { tp: number; pp: number | null; name: string }[] = [];
  for (const name of readdirSync(iterDir).sort()) {
    const m = /^mp_rank_(\d{2,})(?:_(\d{3,}))?(_\d{3,})?$/.exec(name);
    if (!m) continue;
    if (m[3]) throw new InputError('expert-parallel checkpoints (mp_rank_XX_YYY_ZZZ) are not supported', { file: join(iterDir, name) });
    found.push({ tp: Number(m[1]), pp: m[2] === undefined ? null : Number(m[2]), name });
  }
  if (found.length === 0) throw new InputError('no mp_rank_XX folders', { file: iterDir, expected: 'mp_rank_00/ (or mp_rank_00_000/)', actual: 'none' });
  const withPp = found.filter((f) => f.pp !== null).length;
  if (withPp !== 0 && withPp !== found.length) {
    throw new InputError('mix of mp_rank_XX and mp_rank_XX_YYY folders', { file: iterDir });
  }
  const tpSize = Math.max(...found.map((f) => f.tp)) + 1;
  const ppSize = Math.max(...found.map((f) => f.pp ?? 0)) + 1;
  const out: { tp: number; pp: number; path: string }[] = [];
  // PP-major order, TP inside: the stage loop below walks stages in order.
  for (let pp = 0; pp < ppSize; pp++) {
    for (let tp = 0; tp < tpSize; tp++) {
      const name = withPp ? `mp_rank_${pad(tp, 2)}_${pad(pp, 3)}` : `mp_rank_${pad(tp, 2)}`;
      if (!found.some((f) => f.name === name)) {
        throw new InputError(`rank folder ${name} is missing`, {
          file: join(iterDir, name),
          expected: `${tpSize} tensor × ${ppSize} pipeline rank folders`,
          actual: found.map((f) => f.name).join(', '),
        });
      }
      const path = join(iterDir, name, CKPT_FILE);
      if (!existsSync(path)) throw new InputError(`${CKPT_FILE} is missing`, { file: path });
      out.push({ tp, pp, path });
    }
  }
  if (out.length !== found.length) throw new InputError('rank folders with duplicate numbers', { file: iterDir });
  return out;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

// ---------------------------------------------------------------------------------------------
// One file

function loadRank(tp: number, pp: number, path: string): RankFile {
  const ckpt = readTorchCheckpoint(path);
  const { meta } = ckpt;
  const args = meta.args;
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new InputError('no args Namespace in the checkpoint', { file: path, expected: 'args', actual: Object.keys(meta).join(', ') });
  }
  if ([...Object.keys(meta), ...ckpt.tensors.keys()].some((k) => /^model\d+(\.|$)/.test(k))) {
    throw new InputError('virtual-pipeline checkpoints (model0, model1, …) are not supported', { file: path });
  }
  const v = meta.checkpoint_version ?? 0; // absent means 0, as Megatron and the HF converters read it
  if (typeof v !== 'number' || !(v === 0 || v === 1 || v >= 2)) {
    throw new InputError('unknown checkpoint_version', { file: path, expected: 'absent, 0, 1.0, 2.0 or 3.0', actual: String(v) });
  }
  const tensors = new Map<string, TensorRef>();
  for (const [name, t] of ckpt.tensors) {
    if (!name.startsWith('model.')) continue; // rng_state tensors and the like
    const canonical = canonicalName(name.slice('model.'.length));
    if (canonical === null) continue;
    if (tensors.has(canonical)) throw new InputError('two tensors map to one canonical name', { file: path, tensor: canonical });
    tensors.set(canonical, t);
  }
  if (tensors.size === 0) throw new InputError('no tensors under model', { file: path });
  return { tp, pp, path, args: args as Record<string, unknown>, version: v, iteration: meta.iteration ?? meta.total_iters, tensors };
}

/** 2020 spellings → 23.06 spellings; null drops the tensor. */
export function canonicalName(name: string): string | null {
  if (name.startsWith('word_embeddings_for_head.')) return null; // last stage's copy of the tied embedding
  return name
    .replace(/^language_model\.transformer\./, 'language_model.encoder.') // renamed 2021-01-08
    .replace(/\.layers\.(\d+)\.attention\./, '.layers.$1.self_attention.'); // renamed with it
}

function checkSameRun(a: RankFile, b: RankFile): void {
  const keys = new Set([...Object.keys(a.args), ...Object.keys(b.args)]);
  for (const k of keys) {
    if (PER_RANK_ARGS.has(k)) continue;
    if (JSON.stringify(a.args[k]) !== JSON.stringify(b.args[k])) {
      throw new InputError(`args.${k} differs between rank files`, {
        file: b.path,
        expected: `${JSON.stringify(a.args[k])} (as in ${a.path})`,
        actual: JSON.stringify(b.args[k]),
      });
    }
  }
  if (a.version !== b.version) throw new InputError('checkpoint_version differs between rank files', { file: b.path, expected: `${a.version}`, actual: `${b.version}` });
  if (JSON.stringify(a.iteration) !== JSON.stringify(b.iteration)) {
    throw new InputError('iteration differs between rank files', { file: b.path, expected: JSON.stringify(a.iteration), actual: JSON.stringify(b.iteration) });
  }
}

function checkParallelArgs(f: RankFile, tp: number, pp: number): void {
  for (const [key, found] of [['tensor_model_parallel_size', tp], ['pipeline_model_parallel_size', pp]] as const) {
    const v = f.args[key];
    if (v !== undefined && v !== found) {
      throw new InputError(`args.${key} disagrees with the rank folders`, { file: f.path, expected: `${v}`, actual: `${found} folders` });
    }
  }
}

function intArg(f: RankFile, key: string): number {
  const v = f.args[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new InputError(`args.${key} is missing or not a positive integer`, { file: f.path, actual: JSON.stringify(v) });
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Pipeline stages → global layer numbers

const LAYER = /^(language_model\.(?:encoder|decoder))\.layers\.(\d+)\.(.+)$/;

/** Global name → the TP shards of that tensor (index = TP rank). */
function renumberStages(files: RankFile[], ppSize: number, tpSize: number): Map<string, TensorRef[]> {
  const out = new Map<string, { shards: TensorRef[]; stage: number }>();
  const offsets = new Map<string, number>(); // stack → layers in earlier stages
  for (let pp = 0; pp < ppSize; pp++) {
    const stage = files.filter((f) => f.pp === pp);
    const counts = layerCounts(stage[0]);
    for (const f of stage) {
      if (JSON.stringify([...layerCounts(f)]) !== JSON.stringify([...counts])) {
        throw new InputError('tensor-parallel ranks of one stage hold different layers', { file: f.path, expected: `as in ${stage[0].path}` });
      }
      for (const [local, t] of f.tensors) {
        const m = LAYER.exec(local);
        const name = m ? `${m[1]}.layers.${Number(m[2]) + (offsets.get(m[1]) ?? 0)}.${m[3]}` : local;
        let slot = out.get(name);
        if (!slot) {
          slot = { shards: new Array<TensorRef>(tpSize), stage: pp };
          out.set(name, slot);
        } else if (slot.stage !== pp) {
          throw new InputError(`tensor appears in pipeline stages ${slot.stage} and ${pp}`, { file: f.path, tensor: name });
        }
        slot.shards[f.tp] = t;
      }
    }
    for (const [stack, n] of counts) offsets.set(stack, (offsets.get(stack) ?? 0) + n);
  }
  checkLayerTotals(files[0], offsets);
  const merged = new Map<string, TensorRef[]>();
  for (const [name, slot] of out) {
    for (let tp = 0; tp < tpSize; tp++) {
      if (!slot.shards[tp]) {
        const file = files.find((f) => f.tp === tp && f.pp === slot.stage)!.path;
        throw new InputError(`tensor is missing on tensor-parallel rank ${tp}`, { file, tensor: name });
      }
    }
    merged.set(name, slot.shards);
  }
  return merged;
}

/** Layers per stack in one stage file; indices must run 0…n−1 with no gaps. */
function layerCounts(f: RankFile): Map<string, number> {
  const seen = new Map<string, Set<number>>();
  for (const name of f.tensors.keys()) {
    const m = LAYER.exec(name);
    if (!m) continue;
    if (!seen.has(m[1])) seen.set(m[1], new Set());
    seen.get(m[1])!.add(Number(m[2]));
  }
  const counts = new Map<string, number>();
  for (const [stack, ids] of [...seen].sort()) {
    const n = Math.max(...ids) + 1;
    if (ids.size !== n) throw new InputError(`${stack} layer indices have gaps`, { file: f.path, expected: `0…${n - 1}`, actual: [...ids].sort((a, b) => a - b).join(',') });
    counts.set(stack, n);
  }
  return counts;
}

function checkLayerTotals(f: RankFile, totals: Map<string, number>): void {
  const hasDecoder = totals.has('language_model.decoder');
  const expect: [string, unknown][] = [
    ['language_model.encoder', hasDecoder ? (f.args.encoder_num_layers ?? f.args.num_layers) : f.args.num_layers],
    ['language_model.decoder', f.args.decoder_num_layers ?? f.args.num_layers],
  ];
  for (const [stack, want] of expect) {
    const got = totals.get(stack);
    if (got !== undefined && typeof want === 'number' && got !== want) {
      throw new InputError(`${stack} has ${got} layers over all stages, args say ${want}`, { file: f.path, expected: `${want}`, actual: `${got}` });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor-parallel merge (FORMATS.md §8)

type Merge = 'qkv' | 'kv' | 'column' | 'row' | 'replicated';

const QKV = /\.query_key_value\.(weight|bias)$/;
const KV = /\.inter_attention\.key_value\.(weight|bias)$/;
const COLUMN = [
  /\.mlp\.dense_h_to_4h\.(weight|bias)$/,
  /\.inter_attention\.query\.(weight|bias)$/,
  /(^|\.)word_embeddings\.weight$/,
  /^language_model\.output_layer\.weight$/,
  /^lm_head\.bias$/, // BERT/T5: one logit bias per (split) vocabulary row
];
const ROW = /\.(self_attention\.dense|mlp\.dense_4h_to_h|inter_attention\.dense)\.weight$/;

export function mergeKind(name: string): Merge {
  if (QKV.test(name)) return 'qkv';
  if (KV.test(name)) return 'kv';
  if (COLUMN.some((re) => re.test(name))) return 'column';
  if (ROW.test(name)) return 'row';
  return 'replicated';
}

interface QkvGeometry {
  headsPerRank: number;
  hn: number;
  version: number;
}

type Values = Float32Array | Int32Array;

function mergeShards(name: string, shards: TensorRef[], g: QkvGeometry, swiglu: boolean): TensorRef {
  const first = shards[0];
  for (let i = 1; i < shards.length; i++) {
    const s = shards[i];
    if (shapeString(s.shape) !== shapeString(first.shape) || s.dtype !== first.dtype) {
      throw new InputError('shard shape differs from rank 0', {
        file: s.file,
        tensor: name,
        expected: `${first.dtype}${shapeString(first.shape)} (as in ${first.file})`,
        actual: `${s.dtype}${shapeString(s.shape)}`,
      });
    }
  }
  const kind = mergeKind(name);
  const fused = kind === 'qkv' ? 3 : kind === 'kv' ? 2 : 0;
  if (fused) checkFusedRows(name, first, fused, g);
  if (kind === 'replicated') {
    checkReplicas(name, shards);
    return renamed(first, name);
  }
  const reorder = fused > 0 && g.version < 2;
  if (shards.length === 1 && !reorder) return renamed(first, name);
  if (kind === 'row' && first.shape.length !== 2) {
    throw new InputError('row-parallel weight is not 2-D', { file: first.file, tensor: name, expected: '[out, in/tp]', actual: shapeString(first.shape) });
  }
  const dim0 = first.shape[0];
  const shape = kind === 'row' ? [dim0, first.shape[1] * shards.length] : [dim0 * shards.length, ...first.shape.slice(1)];
  const merge = (parts: Values[]): Values => {
    // Each rank's block is upgraded to [np/tp, parts, hn] first; only then do ranks concatenate.
    if (reorder) return concatRows(parts.map((p) => permuteRows(p, rowLength(first.shape), fusedToCanonical(fused, g))));
    if (kind === 'row') return concatCols(parts, dim0);
    if (swiglu && /\.dense_h_to_4h\./.test(name)) return concatSwiglu(parts);
    return concatRows(parts);
  };
  return {
    name,
    dtype: first.dtype,
    shape,
    file: first.file,
    toFloat32: () => merge(shards.map((s) => s.toFloat32())) as Float32Array,
    toInt32: () => merge(shards.map((s) => s.toInt32())) as Int32Array,
  };
}

function renamed(t: TensorRef, name: string): TensorRef {
  return t.name === name ? t : { name, dtype: t.dtype as DType, shape: t.shape, file: t.file, toFloat32: () => t.toFloat32(), toInt32: () => t.toInt32() };
}

function checkFusedRows(name: string, t: TensorRef, parts: number, g: QkvGeometry): void {
  const rows = parts * g.headsPerRank * g.hn;
  if (t.shape[0] !== rows) {
    throw new InputError(`fused ${parts === 3 ? 'QKV' : 'KV'} rows do not match heads × head size`, {
      file: t.file,
      tensor: name,
      expected: `${rows} rows (${parts} × ${g.headsPerRank} heads per rank × ${g.hn})`,
      actual: shapeString(t.shape),
    });
  }
}

/** Replicated tensors must be bit-identical on every rank; a difference means mixed checkpoints. */
function checkReplicas(name: string, shards: TensorRef[]): void {
  if (shards.length === 1) return;
  const ref = bitsOf(shards[0].toFloat32());
  for (let i = 1; i < shards.length; i++) {
    const other = bitsOf(shards[i].toFloat32());
    for (let j = 0; j < ref.length; j++) {
      if (ref[j] !== other[j]) {
        throw new InputError(`replicated tensor differs from rank 0 at element ${j}`, {
          file: shards[i].file,
          tensor: name,
          expected: `the values in ${shards[0].file}`,
          actual: 'different values',
        });
      }
    }
  }
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function rowLength(shape: readonly number[]): number {
  return shape.length > 1 ? numel(shape.slice(1)) : 1;
}

/**
 * perm[dst] = src row of one rank's fused block, for the canonical `[np, parts, hn]` order
 * (FORMATS.md §7): v0 stores `[parts, np, hn]`, v1 `[np, hn, parts]`, v2/v3 already `[np, parts, hn]`.
 */
export function fusedToCanonical(parts: number, g: QkvGeometry): Int32Array {
  const { headsPerRank: np, hn, version } = g;
  const perm = new Int32Array(parts * np * hn);
  for (let j = 0; j < np; j++) {
    for (let w = 0; w < parts; w++) {
      for (let d = 0; d < hn; d++) {
        const dst = j * parts * hn + w * hn + d;
        perm[dst] = version === 0 ? w * np * hn + j * hn + d : version === 1 ? j * hn * parts + d * parts + w : dst;
      }
    }
  }
  return perm;
}

function alloc(like: Values, n: number): Values {
  return like instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
}

// [R, C] with rows reordered: out row i = src row perm[i]
function permuteRows(src: Values, rowLen: number, perm: Int32Array): Values {
  const out = alloc(src, src.length);
  for (let i = 0; i < perm.length; i++) out.set(src.subarray(perm[i] * rowLen, (perm[i] + 1) * rowLen), i * rowLen);
  return out;
}

// tp × [R, …] -> [tp·R, …]
function concatRows(parts: Values[]): Values {
  const out = alloc(parts[0], parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// tp × [R, C] -> [R, tp·C]
function concatCols(parts: Values[], rows: number): Values {
  const cols = parts[0].length / rows;
  const out = alloc(parts[0], parts[0].length * parts.length);
  const width = cols * parts.length;
  for (let r = 0; r < rows; r++) {
    parts.forEach((p, t) => out.set(p.subarray(r * cols, (r + 1) * cols), r * width + t * cols));
  }
  return out;
}

// SwiGLU: tp × [W_t; V_t] -> [W_0 … W_tp−1; V_0 … V_tp−1]
function concatSwiglu(parts: Values[]): Values {
  const half = parts[0].length / 2;
  return concatRows([...parts.map((p) => p.subarray(0, half)), ...parts.map((p) => p.subarray(half))] as Values[]);
}

function checkVocab(tensors: Map<string, TensorRef>, f: RankFile): number | null {
  const emb = tensors.get('language_model.embedding.word_embeddings.weight');
  const fromArgs = typeof f.args.padded_vocab_size === 'number' ? (f.args.padded_vocab_size as number) : null;
  if (!emb) return fromArgs;
  if (fromArgs !== null && emb.shape[0] !== fromArgs) {
    throw new InputError('merged word embeddings do not have args.padded_vocab_size rows', {
      file: f.path,
      tensor: emb.name,
      expected: `${fromArgs} rows`,
      actual: shapeString(emb.shape),
    });
  }
  return emb.shape[0];
}
