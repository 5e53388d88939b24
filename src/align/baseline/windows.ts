/**
 * Interval means. A Megatron stdout loss (and an HF Trainer loss) is the mean over the iterations
 * since the previous log line; to compare, average our per-step curve over the same windows.
 * Point j at our step s_j averages the steps (max(s_j − interval, s_{j−1}, −1), s_j]: at most
 * `interval` steps, never reaching back past the previous point (a shorter first window after
 * `logging_first_step`, or after a resume) nor below step 0.
 */
import type { Curve } from '../curve.ts';

/** First step (inclusive) of each point's window. */
export function windowStarts(steps: readonly number[], interval: number): number[] {
  return steps.map((s, j) => {
    const floor = j > 0 ? steps[j - 1] : -1;
    return Math.max(s - interval, floor) + 1;
  });
}

/**
 * Our metric averaged over each window [starts[j], steps[j]] (see `windowStarts`). A window with a step our curve lacks
 * gives NaN, which never compares close: a missing step must not pass.
 */
export function averageOverWindows(ours: Curve, metric: string, steps: readonly number[], starts: readonly number[]): Curve {
  const values = ours.metrics[metric];
  const at = new Map<number, number>();
  ours.steps.forEach((s, i) => at.set(s, i));
  const means = steps.map((end, j) => {
    if (values === undefined) return Number.NaN;
    let sum = 0;
    for (let s = starts[j]; s <= end; s++) {
      const i = at.get(s);
      if (i === undefined) return Number.NaN;
      sum += values[i];
    }
    return sum / (end - starts[j] + 1);
  });
  return { steps: [...steps], metrics: { [metric]: means } };
}
