/** Source metric name → our name and its timing, via the one table in metrics.ts. */
import { InputError } from '../../../errors.ts';
import type { FamilyName } from '../../../families/registry.ts';
import { findRow, oursFor, type MetricRow } from '../metrics.ts';

export interface ResolvedMetric {
  row: MetricRow | undefined;
  ours: string;
}

export function resolveMetric(sourceName: string, family: FamilyName, file: string): ResolvedMetric {
  const row = findRow(sourceName, family);
  if (!row) return { row: undefined, ours: sourceName.trim() };
  const ours = oursFor(row, family);
  if (ours === undefined) {
    throw new InputError(`metric ${JSON.stringify(sourceName)} has no counterpart in a ${family} suite`, { file, tensor: sourceName });
  }
  return { row, ours };
}

/** Sorts points by step and refuses duplicates, which would make "the value at step s" ambiguous. */
export function sortedPoints(steps: number[], values: number[], file: string): { steps: number[]; values: number[] } {
  const order = steps.map((_, i) => i).sort((a, b) => steps[a] - steps[b]);
  const s = order.map((i) => steps[i]);
  const v = order.map((i) => values[i]);
  for (let i = 1; i < s.length; i++) {
    if (s[i] === s[i - 1]) throw new InputError(`step ${s[i]} appears twice`, { file });
  }
  return { steps: s, values: v };
}

export function requireFinite(value: number, where: string, file: string): number {
  if (!Number.isFinite(value)) {
    throw new InputError(`${where} is ${String(value)}: a reference must hold finite numbers`, { file, expected: 'a finite number', actual: String(value) });
  }
  return value;
}
