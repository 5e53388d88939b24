/** What every importer returns: one metric of one source file, already on our 0-based steps. */
import type { FamilyName } from '../../../families/registry.ts';
import type { MegatronExtent } from '../reference-file.ts';
import type { Rounding } from './rounding.ts';

export interface ImportedSeries {
  /** The metric as the source names it ("lm loss", "learning_rate", a CSV header). */
  metric: string;
  /** Our metric name ("lm_loss", "lr"…). */
  ours: string;
  /** 0-based optimizer steps, ascending: step = iteration − stepBase (+1 for values printed after the scheduler step). */
  steps: number[];
  values: number[];
  /** Steps averaged per point; 1 = the step's own value. */
  interval: number;
  /** 1 when the source counts iterations from 1 (Megatron, HF), 0 when it uses our steps. */
  stepBase: number;
  printedAfterSchedulerStep: boolean;
  rounding: Rounding;
  /** Only for Megatron golden values: what export needs to write the same file back. */
  megatron?: MegatronExtent;
  warnings: string[];
}

export interface ImportOptions {
  /** Source metric name; each format has a default. */
  metric?: string;
  family: FamilyName;
  /** HF Trainer's learning_rate: "next" up to transformers 4.50, "used" from 4.51 (PR #36973). */
  lrLogged?: 'next' | 'used';
  /** CSV only: overrides the base the step column counts from. */
  stepBase?: number;
  /** CSV/txt only: steps averaged per point. */
  interval?: number;
}

/** The most common gap between consecutive iterations: a log interval, robust to a short last window. */
export function inferInterval(iterations: readonly number[]): number {
  if (iterations.length === 0) return 1;
  if (iterations.length === 1) return Math.max(1, iterations[0]);
  const counts = new Map<number, number>();
  for (let i = 1; i < iterations.length; i++) {
    const d = iterations[i] - iterations[i - 1];
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best = 1;
  let bestCount = -1;
  for (const [d, c] of counts) {
    if (c > bestCount || (c === bestCount && d < best)) {
      best = d;
      bestCount = c;
    }
  }
  return best;
}
