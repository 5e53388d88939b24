/**
 * Our parameters back to a foreign layout, derived from the same WeightMap rules that read it:
 * each rule with targets is run backwards (TRANSFORMS[t].inverse) for every layer index the values
 * hold, and named by its `from` pattern. Dropped rules (buffers, tied aliases) write nothing, as
 * HF's save_pretrained writes no aliases into safetensors (FORMATS §1.1).
 *
 * Also here: trimming Megatron's padded vocabulary rows, which HF's converters do on export
 * (FORMATS §8) and which the source checkpoint alone cannot always size.
 */
import { InputError } from '../errors.ts';
import type { ParamSpec } from '../models/params.ts';
import { numel, shapeString } from './checkpoint.ts';
import type { MapRule, WeightMap } from './map.ts';
import { TRANSFORMS, type HostTensor } from './transforms.ts';

export interface ExportedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** What export needs of a model: parameter shapes and the head count for fused projections. */
export interface ExportModel {
  specs: readonly ParamSpec[];
  config: unknown;
}

export interface ExportOptions {
  /** A prefix to put on every written name except those starting with one of `except`. */
  prefix?: { add: string; except: readonly string[] };
  /**
   * `from` patterns that win when several rules fill the same parameter (a map that reads two
   * spellings must write one). Otherwise the first rule in map order wins.
   */
  prefer?: readonly string[];
}

interface Job {
  rule: MapRule;
  index?: string;
  targets: string[];
}

/** Our values -> the map's source layout; throws if a value has no source name to go to. */
export function exportToHf(values: ReadonlyMap<string, Float32Array>, model: ExportModel, map: WeightMap, options: ExportOptions = {}): ExportedTensor[] {
  const shapes = new Map(model.specs.map((s) => [s.name, s.shape]));
  for (const [name, data] of values) {
    const shape = shapes.get(name);
    if (!shape) throw new InputError('value for a parameter the model does not have', { tensor: name });
    if (numel(shape) !== data.length) throw new InputError('value does not match the parameter shape', { tensor: name, expected: `${shapeString(shape)} (${numel(shape)} values)`, actual: `${data.length} values` });
  }
  const jobs = plan(values, map, options.prefer ?? []);
  checkEverythingExported(values, jobs, map);
  const heads = (model.config as { heads?: number }).heads;
  const written = new Set<string>();
  return jobs.map(({ rule, index, targets }) => {
    const name = withPrefix(fill(rule.from, index), options.prefix);
    if (written.has(name)) throw new Error(`map ${map.name} writes ${name} twice`);
    written.add(name);
    const parts: HostTensor[] = targets.map((t) => ({ shape: [...(shapes.get(t) as number[])], data: values.get(t) as Float32Array }));
    const out = TRANSFORMS[rule.transform ?? 'identity'].inverse(parts, { heads }, name);
    return { name, shape: out.shape, data: out.data };
  });
}

/**
 * One job per (rule, layer index) whose targets are all present. Preferred rules go first; a rule
 * whose target another job already fills is an alternative spelling and is skipped.
 */
function plan(values: ReadonlyMap<string, Float32Array>, map: WeightMap, prefer: readonly string[]): Job[] {
  const withTargets = map.rules.filter((r) => r.to !== null);
  const ordered = [...withTargets.filter((r) => prefer.includes(r.from)), ...withTargets.filter((r) => !prefer.includes(r.from))];
  const claimed = new Set<string>();
  const jobs: Job[] = [];
  for (const rule of ordered) {
    for (const index of indicesPresent(rule, values)) {
      const targets = targetsOf(rule).map((t) => fill(t, index));
      if (!targets.every((t) => values.has(t)) || targets.some((t) => claimed.has(t))) continue;
      for (const t of targets) claimed.add(t);
      jobs.push({ rule, index, targets });
    }
  }
  return jobs;
}

/** Layer indices for which any of the rule's targets exists; [undefined] for a rule without `{i}`. */
function indicesPresent(rule: MapRule, values: ReadonlyMap<string, Float32Array>): Array<string | undefined> {
  if (!rule.from.includes('{i}')) return [undefined];
  const found = new Set<string>();
  for (const pattern of targetsOf(rule)) {
    const regex = patternRegex(pattern);
    for (const name of values.keys()) {
      const m = regex.exec(name);
      if (m) found.add(m[1]);
    }
  }
  return [...found].sort((a, b) => Number(a) - Number(b));
}

/** A parameter no job writes would vanish from the export silently; name it instead. */
function checkEverythingExported(values: ReadonlyMap<string, Float32Array>, jobs: Job[], map: WeightMap): void {
  const exported = new Set(jobs.flatMap((j) => j.targets));
  const left = [...values.keys()].filter((name) => !exported.has(name));
  if (left.length === 0) return;
  // A fused source (c_attn, query_key_value) needs all of its parts; say which are absent.
  const partial = map.rules.find((r) => targetsOf(r).length > 1 && targetsOf(r).some((t) => patternRegex(t).test(left[0])));
  throw new InputError(`no ${map.name} name to export ${left.length} parameter(s) to: ${left.slice(0, 5).join(', ')}${left.length > 5 ? ', …' : ''}`, {
    tensor: left[0],
    expected: partial ? `all of ${targetsOf(partial).join(', ')} (fused into ${partial.from})` : `a parameter the ${map.name} map writes`,
    actual: 'a parameter with no source name',
  });
}

function withPrefix(name: string, prefix: ExportOptions['prefix']): string {
  if (!prefix || prefix.except.some((e) => name.startsWith(e))) return name;
  return prefix.add + name;
}

/** A name pattern with `{i}` as a regex capturing the layer index (as map.ts compiles `from`). */
function patternRegex(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replaceAll('{i}', '(\\d+)')}$`);
}

function fill(pattern: string, index: string | undefined): string {
  return index === undefined ? pattern : pattern.replaceAll('{i}', index);
}

function targetsOf(rule: MapRule): readonly string[] {
  if (rule.to === null) return [];
  return typeof rule.to === 'string' ? [rule.to] : rule.to;
}

// ---------------------------------------------------------------------------------------------
// Padded vocabulary (FORMATS §8)

/** Our parameters indexed by vocabulary id along dim 0 (embeddings [V,h], LM-head bias [V], T5's shared/lm_head [V,d]). */
const VOCAB_PARAMS = ['embeddings.word', 'lm_head.bias', 'shared', 'lm_head'];

export interface VocabDecision {
  /** Rows to keep, or null when the real vocabulary is unknown (keep the padded rows). */
  size: number | null;
  why: string;
}

/**
 * The real vocabulary size behind a Megatron checkpoint's padded one. Megatron keeps only the
 * padded size in its weights; its NullTokenizer is the one tokenizer whose size is in `args`
 * (`vocab_size` ids plus one EOD id, the README of baselines/megatron-gpt2). Others read a vocab
 * file the checkpoint does not carry, so the caller must say, or keep the padded rows.
 */
export function megatronVocabSize(args: Readonly<Record<string, unknown>> | undefined, override?: number): VocabDecision {
  if (override !== undefined) return { size: override, why: `--vocab-size ${override}` };
  const tokenizer = args?.tokenizer_type;
  const vocab = args?.vocab_size;
  if (tokenizer === 'NullTokenizer' && typeof vocab === 'number' && Number.isInteger(vocab)) {
    return { size: vocab + 1, why: `NullTokenizer: args.vocab_size ${vocab} + 1 EOD id` };
  }
  return { size: null, why: `tokenizer_type ${JSON.stringify(tokenizer ?? null)} does not record the real vocabulary size` };
}

/**
 * Keeps the first `size` rows of every vocabulary-indexed parameter, as HF's converters slice
 * `word_embeddings[:vocab_size]`. Returns new values and a model view whose specs match them.
 */
export function trimVocabulary(values: ReadonlyMap<string, Float32Array>, model: ExportModel, size: number): { values: Map<string, Float32Array>; model: ExportModel } {
  const word = model.specs.find((s) => s.name === 'embeddings.word' || s.name === 'shared');
  if (!word) throw new InputError('the model has no word embeddings to trim', { expected: 'embeddings.word or shared' });
  const padded = word.shape[0];
  if (!Number.isInteger(size) || size <= 0 || size > padded) {
    throw new InputError('vocabulary size out of range', { tensor: word.name, expected: `1..${padded} (the padded size)`, actual: String(size) });
  }
  const out = new Map(values);
  const specs = model.specs.map((spec) => {
    if (!VOCAB_PARAMS.includes(spec.name) || spec.shape[0] !== padded) return spec;
    const rowLength = numel(spec.shape.slice(1));
    const data = values.get(spec.name);
    // [V_pad, …] -> [size, …]: rows are contiguous, so a prefix of the buffer.
    if (data) out.set(spec.name, data.slice(0, size * rowLength));
    return { name: spec.name, shape: [size, ...spec.shape.slice(1)] };
  });
  return { values: out, model: { specs, config: model.config } };
}
