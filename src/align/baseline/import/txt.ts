/**
 * One float per line, nothing else (LiBai's `torch_loss.txt`). The file stores no steps, so line
 * k (1-based, blank lines and `#` comments skipped) is taken as our step k−1; a file that starts
 * late or skips steps cannot say so. Use CSV with a step column when it can.
 */
import { InputError } from '../../../errors.ts';
import { requireFinite, resolveMetric } from './resolve-metric.ts';
import { printedRounding } from './rounding.ts';
import type { ImportedSeries, ImportOptions } from './series.ts';

export const DEFAULT_TXT_METRIC = 'loss';

export function parseTxt(text: string, file: string, opts: ImportOptions): ImportedSeries {
  const tokens: string[] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    if (/\s|,/.test(t)) throw new InputError(`line ${n + 1} holds more than one value (use --format csv with a step column)`, { file });
    tokens.push(t);
  });
  if (tokens.length === 0) throw new InputError('holds no values', { file });
  const values = tokens.map((t, i) => requireFinite(Number(t), `value ${i + 1}`, file));
  const metric = opts.metric ?? DEFAULT_TXT_METRIC;
  const { ours } = resolveMetric(metric, opts.family, file);
  return {
    metric,
    ours,
    steps: values.map((_, i) => i),
    values,
    interval: opts.interval ?? 1,
    stepBase: 0,
    printedAfterSchedulerStep: false,
    rounding: printedRounding(tokens),
    warnings: [`${file} stores no steps: value k is taken as step k−1 (0-based, steps 0..${values.length - 1})`],
  };
}
