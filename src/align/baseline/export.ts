/**
 * `baseline export --format megatron-golden`: write a curve as Megatron functional-test golden
 * values (FORMATS §11), so a Megatron CI job (or a colleague's `compare_golden_values`) can check
 * against it. Sources: the suite's reference `train_curve.json`, one of our goldens
 * (`golden:<backend>`), or an imported reference by name (written back with its own header, so
 * import → export reproduces a Megatron file's values and steps exactly).
 * Our step s is iteration s+1; the LR, which Megatron prints after the scheduler step, is
 * iteration s (see metrics.ts). Values are rounded to 5 decimals as Megatron's are.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readCurve, type Curve } from '../curve.ts';
import { InputError } from '../../errors.ts';
import { goldenPath, readGolden } from './golden.ts';
import { inferInterval } from './import/series.ts';
import { loadManifest, type Manifest } from './manifest.ts';
import { findRow, iterationOfStep, megatronGoldenName, ourMetricName } from './metrics.ts';
import { readReference, type MegatronExtent } from './reference-file.ts';

export const MEGATRON_GOLDEN_DECIMALS = 5;

export interface MegatronGoldenMetric {
  start_step: number;
  end_step: number;
  step_interval: number;
  values: number[] | Record<string, number>;
}

export interface ExportOptions {
  suiteDir: string;
  /** "reference" (default), "golden:<backend>", or the name of an imported reference. */
  source?: string;
  form: 'dict' | 'list';
  /** Metric names in any spelling the table knows ("lm loss", "num-zeros", "lm_loss"). */
  metrics?: string[];
  /** Keep iteration 1 and every multiple of this (dict) or every this-many from 1 (list). */
  interval?: number;
  /** Decimals to round to; null keeps full precision. */
  decimals: number | null;
}

interface Points {
  key: string;
  iterations: number[];
  values: number[];
  /** The header an imported golden came with, reused when the form matches. */
  extent?: MegatronExtent;
  /** Last iteration of the run the points come from: Megatron's end_step. */
  lastIteration: number;
  select: boolean;
}

export function exportMegatronGolden(opts: ExportOptions): Record<string, MegatronGoldenMetric> {
  const manifest = loadManifest(opts.suiteDir);
  const source = opts.source ?? 'reference';
  const series = source === 'reference' || source.startsWith('golden:') ? fromCurve(opts, manifest, source) : fromImported(opts, manifest, source);
  const out: Record<string, MegatronGoldenMetric> = {};
  for (const p of series) out[p.key] = toMegatron(p, opts);
  return out;
}

function fromCurve(opts: ExportOptions, manifest: Manifest, source: string): Points[] {
  let curve: Curve;
  let file: string;
  if (source === 'reference') {
    file = join(opts.suiteDir, 'train_curve.json');
    curve = readCurve(file);
  } else {
    const backend = source.slice('golden:'.length);
    file = goldenPath(opts.suiteDir, backend);
    if (!existsSync(file)) throw new InputError(`no golden for backend ${JSON.stringify(backend)}`, { file });
    curve = readGolden(file).curve;
  }
  const fam = manifest.family;
  const names = opts.metrics ?? ['lm loss', ...('num_zeros' in curve.metrics ? ['num-zeros'] : [])];
  return names.map((name) => {
    const ours = ourMetricName(name, fam);
    const values = curve.metrics[ours];
    if (!values) throw new InputError(`no series ${JSON.stringify(ours)} for --metric ${JSON.stringify(name)}`, { file, expected: Object.keys(curve.metrics).join(', ') });
    const after = findRow(name, fam)?.printedAfterSchedulerStep === true;
    const iterations = curve.steps.map((s) => iterationOfStep(s, 1, after));
    const keep = iterations.map((it) => it >= 1);
    return {
      key: megatronGoldenName(ours, fam) ?? name,
      iterations: iterations.filter((_, i) => keep[i]),
      values: values.filter((_, i) => keep[i]),
      lastIteration: curve.steps.length > 0 ? iterationOfStep(curve.steps[curve.steps.length - 1], 1, after) : 0,
      select: true,
    };
  });
}

function fromImported(opts: ExportOptions, manifest: Manifest, name: string): Points[] {
  const entry = manifest.references.find((r) => r.name === name);
  if (!entry) {
    throw new InputError(`--source ${JSON.stringify(name)} is neither "reference", "golden:<backend>" nor an imported reference`, {
      file: manifest.file ?? join(opts.suiteDir, 'manifest.json'),
      expected: ['reference', 'golden:<backend>', ...manifest.references.map((r) => r.name)].join(', '),
    });
  }
  const file = join(opts.suiteDir, entry.file);
  const ref = readReference(file);
  if (ref.interval > 1) {
    throw new InputError(`holds means over ${ref.interval} steps; Megatron golden values are per-iteration`, { file });
  }
  if (opts.interval !== undefined) throw new InputError('--interval applies to --source reference or golden:<backend>; an imported reference keeps its own steps', { file });
  const fam = manifest.family;
  for (const m of opts.metrics ?? []) {
    if (ourMetricName(m, fam) !== ref.ours) throw new InputError(`holds ${JSON.stringify(ref.metric)}, not ${JSON.stringify(m)}`, { file });
  }
  const key = ref.format === 'megatron-golden' ? ref.metric : (megatronGoldenName(ref.ours, fam) ?? ref.metric);
  const after = findRow(key, fam)?.printedAfterSchedulerStep === true;
  const iterations = ref.curve.steps.map((s) => iterationOfStep(s, 1, after));
  return [
    {
      key,
      iterations,
      values: ref.curve.metrics[ref.ours],
      extent: ref.megatron,
      lastIteration: iterations[iterations.length - 1] ?? 0,
      select: false,
    },
  ];
}

function round(value: number, decimals: number | null): number {
  // toFixed rounds the exact binary value, ties away from zero; Python's round() (which Megatron
  // uses) rounds exact ties to even. They differ only on exact ties such as 0.015625 → 5 decimals.
  return decimals === null ? value : Number(value.toFixed(decimals));
}

function toMegatron(p: Points, opts: ExportOptions): MegatronGoldenMetric {
  const k = opts.interval ?? 1;
  let its = p.iterations;
  let vals = p.values;
  if (p.select) {
    // Megatron keeps iteration 1 and the multiples of the interval (dict), or every k-th TensorBoard element (list).
    const keep = its.map((it) => (opts.form === 'dict' ? it === 1 || it % k === 0 : (it - 1) % k === 0));
    its = its.filter((_, i) => keep[i]);
    vals = vals.filter((_, i) => keep[i]);
  }
  if (its.length === 0) throw new InputError(`nothing to export for ${JSON.stringify(p.key)}`);
  const rounded = vals.map((v) => round(v, opts.decimals));
  const stored = p.extent?.form === opts.form ? p.extent : undefined;
  if (opts.form === 'dict') {
    return {
      start_step: stored?.start_step ?? its[0],
      end_step: stored?.end_step ?? p.lastIteration,
      step_interval: stored?.step_interval ?? (p.select ? k : inferInterval(its)),
      values: Object.fromEntries(its.map((it, i) => [String(it), rounded[i]])),
    };
  }
  // List form: values[i] is iteration start_step + i·step_interval + 1, so the kept iterations must be evenly spaced.
  const spacing = its.length > 1 ? its[1] - its[0] : (stored?.step_interval ?? k);
  for (let i = 1; i < its.length; i++) {
    if (its[i] - its[i - 1] !== spacing) {
      throw new InputError(`iterations of ${JSON.stringify(p.key)} are not evenly spaced (${its[i - 1]} → ${its[i]}); the list form cannot hold them, use --form dict`);
    }
  }
  return {
    start_step: its[0] - 1,
    end_step: stored?.end_step ?? p.lastIteration,
    step_interval: spacing,
    values: rounded,
  };
}
