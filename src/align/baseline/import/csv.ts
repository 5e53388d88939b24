/**
 * CSV with a header: a step column (`step`/`steps`, counted from 0 like ours, or
 * `iteration`/`iter`, counted from 1 like Megatron; `--step-base` overrides) and metric columns.
 * Values are taken as given at their step (no LR shift): say otherwise with --step-base.
 */
import { InputError } from '../../../errors.ts';
import { requireFinite, resolveMetric, sortedPoints } from './resolve-metric.ts';
import { printedRounding } from './rounding.ts';
import type { ImportedSeries, ImportOptions } from './series.ts';

const STEP_COLUMNS: Readonly<Record<string, number>> = { step: 0, steps: 0, iteration: 1, iter: 1 };

function cells(line: string): string[] {
  return line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
}

export function parseCsv(text: string, file: string, opts: ImportOptions): ImportedSeries {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (lines.length < 2) throw new InputError('needs a header line and at least one row', { file });
  const header = cells(lines[0]);
  const stepCol = header.findIndex((h) => h.toLowerCase() in STEP_COLUMNS);
  if (stepCol < 0) {
    throw new InputError('no step column in the header (for bare values use --format txt)', {
      file,
      expected: Object.keys(STEP_COLUMNS).join(' | '),
      actual: header.join(','),
    });
  }
  const metricCols = header.map((h, i) => ({ h, i })).filter(({ i }) => i !== stepCol);
  let col: { h: string; i: number } | undefined;
  if (opts.metric !== undefined) col = metricCols.find(({ h }) => h.toLowerCase() === opts.metric?.trim().toLowerCase());
  else if (metricCols.length === 1) col = metricCols[0];
  if (!col) {
    throw new InputError(opts.metric === undefined ? 'several metric columns: choose one with --metric' : `no column ${JSON.stringify(opts.metric)}`, {
      file,
      expected: metricCols.map(({ h }) => h).join(', '),
      actual: opts.metric ?? '(none)',
    });
  }
  const stepBase = opts.stepBase ?? STEP_COLUMNS[header[stepCol].toLowerCase()];
  const steps: number[] = [];
  const values: number[] = [];
  const tokens: string[] = [];
  for (let n = 1; n < lines.length; n++) {
    const row = cells(lines[n]);
    const stepText = row[stepCol] ?? '';
    if (!/^\d+$/.test(stepText)) throw new InputError(`line ${n + 1}: step ${JSON.stringify(stepText)} is not a whole number`, { file });
    const step = Number(stepText) - stepBase;
    if (step < 0) throw new InputError(`line ${n + 1}: step ${stepText} is below the step base ${stepBase}`, { file });
    const token = row[col.i] ?? '';
    steps.push(step);
    values.push(requireFinite(token === '' ? NaN : Number(token), `line ${n + 1} ${col.h}`, file));
    tokens.push(token);
  }
  const { ours } = resolveMetric(col.h, opts.family, file);
  return {
    metric: col.h,
    ours,
    ...sortedPoints(steps, values, file),
    interval: opts.interval ?? 1,
    stepBase,
    printedAfterSchedulerStep: false,
    rounding: printedRounding(tokens),
    warnings: [],
  };
}
