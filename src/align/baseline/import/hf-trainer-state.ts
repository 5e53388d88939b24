/**
 * HF Trainer `trainer_state.json`: `log_history` entries `{loss, grad_norm, learning_rate, step,
 * epoch}` every `logging_steps` optimizer steps; `step` is global_step after the update (1-based).
 * `loss` is round(mean over the steps since the previous log, 4); `grad_norm` is the logging
 * step's own; `learning_rate` is the next step's up to transformers 4.50 and the step's own from
 * 4.51 (PR #36973), which the file does not record: `--lr-logged` must say which.
 */
import { InputError } from '../../../errors.ts';
import { HF_LOSS_ROUNDING_ATOL } from '../defaults.ts';
import { parseJson } from '../../../json-file.ts';
import { stepOfIteration } from '../metrics.ts';
import { requireFinite, resolveMetric, sortedPoints } from './resolve-metric.ts';
import { EXACT } from './rounding.ts';
import { inferInterval, type ImportedSeries, type ImportOptions } from './series.ts';

export const DEFAULT_HF_METRIC = 'loss';

export function parseHfTrainerState(text: string, file: string, opts: ImportOptions): ImportedSeries {
  const json = parseJson(text, file) as { log_history?: unknown; logging_steps?: unknown } | null;
  if (json === null || typeof json !== 'object' || !Array.isArray(json.log_history)) {
    throw new InputError('has no "log_history" array (is it a trainer_state.json?)', { file, tensor: 'log_history' });
  }
  const metric = opts.metric ?? DEFAULT_HF_METRIC;
  const iterations: number[] = [];
  const values: number[] = [];
  const keys = new Set<string>();
  json.log_history.forEach((entry: unknown, i: number) => {
    if (typeof entry !== 'object' || entry === null) return;
    const e = entry as Record<string, unknown>;
    Object.keys(e).forEach((k) => keys.add(k));
    if (!(metric in e)) return;
    if (typeof e.step !== 'number' || !Number.isInteger(e.step)) {
      throw new InputError(`log_history[${i}] has ${JSON.stringify(metric)} but no integer "step"`, { file, tensor: `log_history[${i}].step` });
    }
    const v = e[metric];
    iterations.push(e.step);
    values.push(requireFinite(typeof v === 'number' ? v : NaN, `log_history[${i}].${metric}`, file));
  });
  if (iterations.length === 0) {
    throw new InputError(`no log_history entry has ${JSON.stringify(metric)} (choose one with --metric)`, {
      file,
      expected: [...keys].filter((k) => k !== 'step' && k !== 'epoch').join(', '),
      actual: metric,
    });
  }
  const { row, ours } = resolveMetric(metric, opts.family, file);
  let after = false;
  if (row?.printedAfterSchedulerStep) {
    if (opts.lrLogged === undefined) {
      throw new InputError('learning_rate from a trainer_state.json needs --lr-logged next|used: transformers ≤ 4.50 logs the next step\'s LR, ≥ 4.51 the one just used', {
        file,
      });
    }
    after = opts.lrLogged === 'next';
  }
  const sorted = sortedPoints(
    iterations.map((it) => stepOfIteration(it, 1, after)),
    values,
    file,
  );
  const spacing = inferInterval([...iterations].sort((a, b) => a - b));
  const loggingSteps = typeof json.logging_steps === 'number' && Number.isInteger(json.logging_steps) ? json.logging_steps : undefined;
  const warnings: string[] = [];
  if (loggingSteps !== undefined && loggingSteps !== spacing && iterations.length > 2) {
    warnings.push(`logging_steps is ${loggingSteps} but entries are ${spacing} steps apart; using ${loggingSteps}`);
  }
  const logInterval = loggingSteps ?? spacing;
  const isMean = row === undefined || row.logged === 'interval-mean';
  return {
    metric,
    ours,
    ...sorted,
    interval: isMean ? logInterval : 1,
    stepBase: 1,
    printedAfterSchedulerStep: after,
    rounding: metric === 'loss' ? { atol: HF_LOSS_ROUNDING_ATOL, rtol: 0 } : EXACT,
    warnings,
  };
}
