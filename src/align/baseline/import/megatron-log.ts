/**
 * Megatron-LM stdout (FORMATS §10): one ` iteration N/ T | key: value | … |` line per log
 * interval, as 23.06 prints it or with the `[YYYY-MM-DD HH:MM:SS(.ffffff)]` prefix of newer
 * versions (anything before "iteration" is ignored, so rank prefixes from launchers are too).
 * Losses on a line are means over the iterations since the previous line; norms, counts and the LR
 * are the printing iteration's (the LR after its scheduler step). Validation lines
 * (` validation loss at iteration N | lm loss value: …`) are skipped: they are not training steps.
 */
import { InputError } from '../../../errors.ts';
import { stepOfIteration } from '../metrics.ts';
import { requireFinite, resolveMetric, sortedPoints } from './resolve-metric.ts';
import { printedRounding } from './rounding.ts';
import { inferInterval, type ImportedSeries, type ImportOptions } from './series.ts';

export const DEFAULT_LOG_METRIC = 'lm loss';

const TRAIN_LINE = /(?:^|[\s\]|])iteration\s+(\d+)\s*\/\s*(\d+)\s*\|(.*)$/;
const VALIDATION = /validation loss at iteration/;
/** `_print_args` prints `  log_interval .............. 10`; when present it confirms the inferred interval. */
const LOG_INTERVAL_ARG = /^\s*log_interval\s+\.+\s+(\d+)\s*$/m;

export function parseMegatronLog(text: string, file: string, opts: ImportOptions): ImportedSeries {
  const metric = opts.metric ?? DEFAULT_LOG_METRIC;
  const byIteration = new Map<number, string>();
  const keysSeen = new Set<string>();
  const warnings: string[] = [];
  let lines = 0;
  let missing = 0;
  text.split(/\r?\n/).forEach((line, n) => {
    if (VALIDATION.test(line)) return;
    const m = TRAIN_LINE.exec(line);
    if (!m) return;
    lines++;
    const fields = new Map<string, string>();
    for (const segment of m[3].split('|')) {
      const colon = segment.lastIndexOf(':');
      if (colon < 0) continue;
      const key = segment.slice(0, colon).trim();
      fields.set(key, segment.slice(colon + 1).trim());
      keysSeen.add(key);
    }
    const token = fields.get(metric);
    if (token === undefined) {
      // 23.06 prints a loss only when > 0, main when ≥ 0: an absent key is not an error per line.
      missing++;
      return;
    }
    const iteration = Number(m[1]);
    if (byIteration.has(iteration)) warnings.push(`iteration ${iteration} is logged twice (line ${n + 1}; a resumed run?): the later line is used`);
    byIteration.set(iteration, token);
  });
  if (lines === 0) throw new InputError('no Megatron training log lines (" iteration N/ T | …")', { file });
  if (byIteration.size === 0) {
    throw new InputError(`no training line has ${JSON.stringify(metric)} (choose one with --metric)`, {
      file,
      expected: [...keysSeen].join(', '),
      actual: metric,
    });
  }
  if (missing > 0) warnings.push(`${missing} of ${lines} training lines have no ${JSON.stringify(metric)}`);

  const iterations = [...byIteration.keys()].sort((a, b) => a - b);
  const tokens = iterations.map((it) => byIteration.get(it) as string);
  const values = tokens.map((t, i) => requireFinite(Number(t), `${metric} at iteration ${iterations[i]}`, file));
  const logInterval = inferInterval(iterations);
  const declared = LOG_INTERVAL_ARG.exec(text);
  if (declared && Number(declared[1]) !== logInterval) {
    warnings.push(`the args block says log_interval ${declared[1]}, the lines are ${logInterval} apart; using ${logInterval}`);
  }
  const { row, ours } = resolveMetric(metric, opts.family, file);
  const after = row?.printedAfterSchedulerStep === true;
  const sorted = sortedPoints(
    iterations.map((it) => stepOfIteration(it, 1, after)),
    values,
    file,
  );
  return {
    metric,
    ours,
    ...sorted,
    // A metric the table does not know is taken as an interval mean, like every loss Megatron prints.
    interval: row?.logged === 'point' ? 1 : logInterval,
    stepBase: 1,
    printedAfterSchedulerStep: after,
    rounding: printedRounding(tokens),
    warnings,
  };
}
