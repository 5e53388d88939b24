/**
 * Megatron-LM functional-test golden values (FORMATS §11), both forms:
 *  - dict (since 2025-01): `values` keyed by iteration number as a string: `{"1": 10.49, "5": …}`;
 *  - list (2023–2024): `values[i]` is TensorBoard element start_step + i·step_interval, element 0
 *    being iteration 1, so iteration = start_step + i·step_interval + 1. FORMATS marks this
 *    inferred; the shipped megatron-bert golden_values_2023.json matches train_curve.json to 5e-6
 *    under it and is off by > 1 nat under either neighbouring offset (see the import test).
 * Values are per-iteration TensorBoard scalars (interval 1) rounded to 5 decimals.
 */
import { z } from 'zod';
import { InputError } from '../../../errors.ts';
import { MEGATRON_GOLDEN_ROUNDING_ATOL } from '../defaults.ts';
import { describeZodIssue, parseJson } from '../../../json-file.ts';
import { stepOfIteration } from '../metrics.ts';
import { requireFinite, resolveMetric, sortedPoints } from './resolve-metric.ts';
import type { ImportedSeries, ImportOptions } from './series.ts';

export const DEFAULT_GOLDEN_METRIC = 'lm loss';

const nonNegInt = z.number().int().nonnegative();
// Elements are checked one by one below, so that a NaN (null after some JSON writers) or an
// overflowing literal (Infinity after JSON.parse) is named as such, with its iteration.
const value = z.unknown();
const metricSchema = z.looseObject({
  start_step: nonNegInt,
  end_step: nonNegInt,
  step_interval: z.number().int().positive(),
  values: z.union([z.array(value), z.record(z.string(), value)]),
});

export function parseMegatronGolden(text: string, file: string, opts: ImportOptions): ImportedSeries {
  const json = parseJson(text, file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError('is not a JSON object', { file });
  const metric = opts.metric ?? DEFAULT_GOLDEN_METRIC;
  const available = Object.entries(json as Record<string, unknown>)
    .filter(([, v]) => typeof v === 'object' && v !== null && 'values' in v)
    .map(([k]) => k);
  const entry = (json as Record<string, unknown>)[metric];
  if (entry === undefined || !available.includes(metric)) {
    throw new InputError(`no metric ${JSON.stringify(metric)} (choose one with --metric)`, { file, expected: available.join(', '), actual: metric });
  }
  const parsed = metricSchema.safeParse(entry);
  if (!parsed.success) {
    throw new InputError(describeZodIssue(parsed.error, [metric]), { file, cause: parsed.error });
  }
  const { start_step, end_step, step_interval, values } = parsed.data;

  const iterations: number[] = [];
  const vals: number[] = [];
  const form = Array.isArray(values) ? 'list' : 'dict';
  if (Array.isArray(values)) {
    values.forEach((v, i) => {
      iterations.push(start_step + i * step_interval + 1);
      vals.push(finiteValue(v, `${metric}.values[${i}]`, file));
    });
  } else {
    for (const [key, v] of Object.entries(values)) {
      if (!/^\d+$/.test(key)) throw new InputError(`key ${metric}.values.${key}: not an iteration number`, { file });
      iterations.push(Number(key));
      vals.push(finiteValue(v, `${metric}.values["${key}"]`, file));
    }
  }
  const { row, ours } = resolveMetric(metric, opts.family, file);
  const after = row?.printedAfterSchedulerStep === true;
  const { steps, values: sortedValues } = sortedPoints(
    iterations.map((it) => stepOfIteration(it, 1, after)),
    vals,
    file,
  );
  return {
    metric,
    ours,
    steps,
    values: sortedValues,
    interval: 1,
    stepBase: 1,
    printedAfterSchedulerStep: after,
    rounding: { atol: MEGATRON_GOLDEN_ROUNDING_ATOL, rtol: 0 },
    megatron: { form, start_step, end_step, step_interval },
    warnings: [],
  };
}

function finiteValue(v: unknown, where: string, file: string): number {
  if (v === null) throw new InputError(`${where} is null (a NaN or Infinity written as JSON): golden values must be finite`, { file });
  if (typeof v !== 'number') throw new InputError(`${where} is not a number`, { file, actual: JSON.stringify(v) });
  return requireFinite(v, where, file);
}
