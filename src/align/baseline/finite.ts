/**
 * Baselines hold finite numbers only. Megatron's check_golden_values rejects NaN and Inf for the
 * same reason: a NaN never compares close, so a golden holding one can never pass again, and JSON
 * cannot even write it (JSON.stringify turns it into null).
 */
import type { Curve } from '../curve.ts';
import { InputError } from '../../errors.ts';

export function assertFiniteCurve(curve: Curve, file: string): void {
  for (const [metric, values] of Object.entries({ steps: curve.steps, ...curve.metrics })) {
    const i = values.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) {
      const where = metric === 'steps' ? `index ${i}` : `step ${curve.steps[i]}`;
      throw new InputError(`${metric} is ${String(values[i])} at ${where}: baselines must be finite`, {
        file,
        tensor: metric,
        expected: 'a finite number',
        actual: String(values[i]),
      });
    }
  }
}

/** JSON null where a number belongs is how NaN/Inf come out of JSON.stringify. */
export function assertNoNulls(series: Record<string, unknown>, file: string): void {
  for (const [key, values] of Object.entries(series)) {
    if (!Array.isArray(values)) continue;
    const i = values.indexOf(null);
    if (i >= 0) {
      throw new InputError(`${key}[${i}] is null (a NaN or Infinity written as JSON): baselines must be finite`, {
        file,
        tensor: key,
        expected: 'a finite number',
        actual: 'null',
      });
    }
  }
}
