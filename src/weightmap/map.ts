/**
 * Weight maps as data: rules from a foreign name pattern to our names, with a named transform.
 * Applying a map to a checkpoint yields our parameters plus a full report — every source tensor
 * mapped, dropped on purpose, or unmapped; every target filled or missing; every shape checked.
 */
import { InputError } from '../errors.ts';
import type { Checkpoint, TensorRef } from './checkpoint.ts';
import { numel, shapeString } from './checkpoint.ts';
import { TRANSFORMS, type HostTensor, type TransformContext, type TransformName } from './transforms.ts';
import type { ParamSpec } from '../models/params.ts';

export interface MapRule {
  /** Source pattern; `{i}` matches a layer index and carries it to the targets. */
  from: string;
  /** Our parameter name(s) (one per transform output), or null to drop the tensor on purpose. */
  to: string | readonly string[] | null;
  transform?: TransformName;
  /** For dropped tensors: why (buffer, tied alias…). Shown in the report. */
  note?: string;
  /** A tied alias: when both are present, the values must be equal. */
  tiedTo?: string;
}

export interface WeightMap {
  /** e.g. "hf-bert", "megatron-gpt2". */
  name: string;
  rules: readonly MapRule[];
  /** Prefixes some writers add and others omit (GPT-2 `transformer.`); stripped before matching. */
  optionalPrefixes?: readonly string[];
}

export type RowStatus = 'mapped' | 'dropped' | 'unmapped' | 'mismatched';

export interface MapRow {
  source: string;
  target: string | null;
  transform: string;
  shape: number[];
  status: RowStatus;
  note?: string;
}

export interface MapReport {
  rows: MapRow[];
  unmapped: string[];
  missing: string[];
  mismatched: Array<{ source: string; target: string; expected: string; actual: string }>;
}

export interface MappedWeights {
  values: Map<string, Float32Array>;
  report: MapReport;
}

interface CompiledRule {
  rule: MapRule;
  regex: RegExp;
}

function compile(rule: MapRule): CompiledRule {
  const escaped = rule.from.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replaceAll('{i}', '(\\d+)');
  return { rule, regex: new RegExp(`^${escaped}$`) };
}

/** HF's load-time rename: keys ending in LayerNorm.gamma/beta mean .weight/.bias (suffix rule only). */
export function normaliseSourceName(name: string, map: WeightMap): string {
  let n = name.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
  for (const prefix of map.optionalPrefixes ?? []) {
    if (n.startsWith(prefix)) {
      n = n.slice(prefix.length);
      break;
    }
  }
  return n;
}

function fill(pattern: string, index: string | undefined): string {
  return index === undefined ? pattern : pattern.replaceAll('{i}', index);
}

function targetsOf(rule: MapRule): readonly string[] {
  if (rule.to === null) return [];
  return typeof rule.to === 'string' ? [rule.to] : rule.to;
}

/**
 * Applies `map` to `checkpoint` for a model with parameters `specs`. Never throws for a mapping
 * problem: those go into the report, and `requireComplete` turns them into an error.
 */
export function applyWeightMap(checkpoint: Checkpoint, map: WeightMap, specs: readonly ParamSpec[], ctx: TransformContext = {}): MappedWeights {
  const values = new Map<string, Float32Array>();
  const report = streamWeightMap(checkpoint, map, specs, (target, data) => values.set(target, data), ctx);
  return { values, report };
}

/**
 * The same, handing each mapped value to `sink` as soon as it is made and keeping none: a loader
 * that uploads each value and lets it go holds one tensor on the host at a time, not the model.
 */
export function streamWeightMap(
  checkpoint: Checkpoint,
  map: WeightMap,
  specs: readonly ParamSpec[],
  sink: (target: string, data: Float32Array) => void,
  ctx: TransformContext = {},
): MapReport {
  const compiled = map.rules.map(compile);
  const expected = new Map(specs.map((s) => [s.name, s.shape]));
  const filled = new Set<string>();
  const report: MapReport = { rows: [], unmapped: [], missing: [], mismatched: [] };
  const normalisedNames = new Map<string, TensorRef>();
  for (const ref of checkpoint.tensors.values()) normalisedNames.set(normaliseSourceName(ref.name, map), ref);

  for (const [name, ref] of normalisedNames) {
    const hit = findRule(compiled, name);
    if (!hit) {
      report.unmapped.push(ref.name);
      report.rows.push({ source: ref.name, target: null, transform: '-', shape: [...ref.shape], status: 'unmapped' });
      continue;
    }
    const { rule, index } = hit;
    if (rule.to === null) {
      const note = rule.note ?? 'dropped';
      const twin = rule.tiedTo ? normalisedNames.get(fill(rule.tiedTo, index)) : undefined;
      if (twin && !sameValues(ref, twin)) {
        report.mismatched.push({ source: ref.name, target: twin.name, expected: 'equal to its tied twin', actual: 'different values' });
        report.rows.push({ source: ref.name, target: null, transform: '-', shape: [...ref.shape], status: 'mismatched', note: `tied to ${twin.name} but differs` });
      } else {
        report.rows.push({ source: ref.name, target: null, transform: '-', shape: [...ref.shape], status: 'dropped', note });
      }
      continue;
    }
    const transformName = rule.transform ?? 'identity';
    const transform = TRANSFORMS[transformName];
    const targets = targetsOf(rule).map((t) => fill(t, index));
    let outputs: HostTensor[];
    try {
      outputs = transform.forward({ shape: [...ref.shape], data: ref.toFloat32() }, ctx, ref.name);
    } catch (error) {
      const actual = shapeString(ref.shape);
      for (const target of targets) {
        report.mismatched.push({ source: ref.name, target, expected: transform.describe, actual: error instanceof Error ? error.message : actual });
        report.rows.push({ source: ref.name, target, transform: transformName, shape: [...ref.shape], status: 'mismatched' });
      }
      continue;
    }
    outputs.forEach((out, k) => {
      const target = targets[k];
      const want = expected.get(target);
      if (!want) {
        report.unmapped.push(ref.name);
        report.rows.push({ source: ref.name, target, transform: transformName, shape: out.shape, status: 'unmapped', note: `the model has no parameter ${target}` });
        return;
      }
      if (shapeString(want) !== shapeString(out.shape) || out.data.length !== numel(want)) {
        report.mismatched.push({ source: ref.name, target, expected: shapeString(want), actual: shapeString(out.shape) });
        report.rows.push({ source: ref.name, target, transform: transformName, shape: out.shape, status: 'mismatched' });
        return;
      }
      sink(target, out.data);
      filled.add(target);
      report.rows.push({ source: ref.name, target, transform: transformName, shape: out.shape, status: 'mapped' });
    });
  }
  for (const spec of specs) if (!filled.has(spec.name) && !report.mismatched.some((m) => m.target === spec.name)) report.missing.push(spec.name);
  return report;
}

function findRule(compiled: CompiledRule[], name: string): { rule: MapRule; index?: string } | null {
  for (const c of compiled) {
    const m = c.regex.exec(name);
    if (m) return { rule: c.rule, index: m[1] };
  }
  return null;
}

function sameValues(a: TensorRef, b: TensorRef): boolean {
  if (shapeString(a.shape) !== shapeString(b.shape)) return false;
  const x = a.toFloat32();
  const y = b.toFloat32();
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  return true;
}

export function isComplete(report: MapReport): boolean {
  return report.unmapped.length === 0 && report.missing.length === 0 && report.mismatched.length === 0;
}

/** Refuses an incomplete mapping, naming the first problems of each kind and the checkpoint file. */
export function requireComplete(report: MapReport, file: string, mapName: string): void {
  if (isComplete(report)) return;
  const lines: string[] = [];
  const first = <T>(xs: T[], f: (x: T) => string) => xs.slice(0, 5).map(f).join(', ') + (xs.length > 5 ? `, … (${xs.length} in all)` : '');
  if (report.unmapped.length) lines.push(`${report.unmapped.length} tensor(s) the ${mapName} map does not know: ${first(report.unmapped, (s) => s)}`);
  if (report.missing.length) lines.push(`${report.missing.length} parameter(s) not found in the checkpoint: ${first(report.missing, (s) => s)}`);
  if (report.mismatched.length) lines.push(`${report.mismatched.length} shape mismatch(es): ${first(report.mismatched, (m) => `${m.source} -> ${m.target} expected ${m.expected}, got ${m.actual}`)}`);
  const tensor = report.mismatched[0]?.source ?? report.unmapped[0] ?? report.missing[0];
  throw new InputError(`checkpoint does not fit the model (${lines.join('; ')})`, { file, tensor });
}

/** Our parameter names a foreign name maps to (empty when dropped or unknown). */
export function targetsForSource(map: WeightMap, sourceName: string): string[] {
  const hit = findRule(map.rules.map(compile), normaliseSourceName(sourceName, map));
  if (!hit) return [];
  return targetsOf(hit.rule).map((t) => fill(t, hit.index));
}
