/**
 * The one table between metric names as references write them (Megatron stdout, Megatron
 * TensorBoard / golden values, HF Trainer) and ours (train_curve.json keys), with what a logged
 * value means in time. Importers, comparisons and exports all read it; add a row here, nowhere else.
 */
import { familyNamed, type FamilyName } from '../../families/registry.ts';

export interface MetricRow {
  /**
   * Our metric name; for a loss Megatron logs by name, the family's own name for it
   * (`Family.megatronLosses`: BERT's masked-LM loss is `lm_loss` in the Megatron fixture,
   * `mlm_loss` in the HF one, the whole `loss` of a GPT).
   */
  ours: string | { familyLoss: string };
  /** Megatron stdout key (`training_log`), e.g. "lm loss". */
  megatronLog?: string;
  /** Megatron TensorBoard tag = golden-values key, e.g. "num-zeros". */
  megatronGolden?: string;
  /** HF Trainer `log_history` key. */
  hf?: string;
  /**
   * What one Megatron stdout line (and one HF log entry) holds: losses are the mean over the log
   * interval; norms, counts and the LR are the printing iteration's own value.
   */
  logged: 'interval-mean' | 'point';
  /**
   * Megatron reads the LR after the scheduler step, so iteration I prints the LR of iteration I+1
   * (FORMATS §10; `lr_after_step` in the megatron-bert train_curve.json). HF Trainer did the same
   * up to transformers 4.50 (fixed in PR #36973, 4.51).
   */
  printedAfterSchedulerStep?: true;
}

export const METRIC_TABLE: readonly MetricRow[] = [
  {
    ours: { familyLoss: 'lm loss' },
    megatronLog: 'lm loss',
    megatronGolden: 'lm loss',
    logged: 'interval-mean',
  },
  {
    ours: { familyLoss: 'sop loss' },
    megatronLog: 'sop loss',
    megatronGolden: 'sop loss',
    logged: 'interval-mean',
  },
  { ours: 'loss', megatronGolden: 'total loss', hf: 'loss', logged: 'interval-mean' },
  { ours: 'grad_norm', megatronLog: 'grad norm', megatronGolden: 'grad-norm', hf: 'grad_norm', logged: 'point' },
  {
    ours: 'lr',
    megatronLog: 'learning rate',
    megatronGolden: 'learning-rate',
    hf: 'learning_rate',
    logged: 'point',
    printedAfterSchedulerStep: true,
  },
  { ours: 'num_zeros', megatronLog: 'num zeros', megatronGolden: 'num-zeros', logged: 'point' },
  { ours: 'params_norm', megatronLog: 'params norm', megatronGolden: 'params-norm', logged: 'point' },
];

export function oursFor(row: MetricRow, family: FamilyName): string | undefined {
  return typeof row.ours === 'string' ? row.ours : familyNamed(family)?.megatronLosses?.[row.ours.familyLoss];
}

function sourceNames(row: MetricRow): string[] {
  return [row.megatronLog, row.megatronGolden, row.hf].filter((n): n is string => n !== undefined);
}

/** The row for a metric name in any spelling (source names, or ours for `family`), or undefined. */
export function findRow(name: string, family: FamilyName): MetricRow | undefined {
  const n = name.trim().toLowerCase();
  return (
    METRIC_TABLE.find((r) => sourceNames(r).some((s) => s.toLowerCase() === n)) ??
    METRIC_TABLE.find((r) => oursFor(r, family) === n)
  );
}

/** Our name for a source metric; names the table does not know are kept as they are. */
export function ourMetricName(sourceName: string, family: FamilyName): string {
  const row = findRow(sourceName, family);
  const ours = row ? oursFor(row, family) : undefined;
  return ours ?? sourceName.trim();
}

/** The Megatron golden-values key for one of our metrics, or undefined when Megatron has none. */
export function megatronGoldenName(ours: string, family: FamilyName): string | undefined {
  const row = METRIC_TABLE.find((r) => oursFor(r, family) === ours);
  return row?.megatronGolden;
}

/**
 * Iteration numbers are 1-based in Megatron and in HF's `step` (global_step after the update);
 * ours are 0-based optimizer steps: step = iteration − 1. A value printed after the scheduler
 * step belongs to the next iteration: step = iteration.
 */
export function stepOfIteration(iteration: number, stepBase: number, printedAfterSchedulerStep: boolean): number {
  return iteration - stepBase + (printedAfterSchedulerStep ? 1 : 0);
}

export function iterationOfStep(step: number, stepBase: number, printedAfterSchedulerStep: boolean): number {
  return step + stepBase - (printedAfterSchedulerStep ? 1 : 0);
}
