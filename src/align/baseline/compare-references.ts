/**
 * Our run against every reference imported into the suite (manifest `references`), each with the
 * manifest's tolerance for its metric widened by how coarsely the source printed it (Megatron
 * goldens: 5 decimals → atol + 5e-6; Megatron stdout `%.6E` → rtol + 5e-7; HF loss: 4 decimals →
 * atol + 5e-5). Interval means are compared with our curve averaged over the same windows.
 * Like the goldens, only the reference points whose window the run covered are compared: a short
 * run checks its prefix. A reference none of whose points the run covered fails (0 steps).
 */
import { join } from 'node:path';
import { compareMetric, type CurveTolerance } from '../compare-curve.ts';
import type { Curve } from '../curve.ts';
import type { MetricComparison } from '../verdict.ts';
import { InputError } from '../../errors.ts';
import { curveToleranceFor, type Manifest } from './manifest.ts';
import { readReference, type ReferenceFile } from './reference-file.ts';
import { averageOverWindows, windowStarts } from './windows.ts';

export function compareWithReferences(suiteDir: string, manifest: Manifest, ours: Curve): MetricComparison[] {
  return manifest.references.map((entry) => {
    const file = join(suiteDir, entry.file);
    const ref = readReference(file);
    if (ref.name !== entry.name || ref.ours !== entry.ours) {
      throw new InputError('reference file disagrees with its manifest entry', {
        file,
        expected: `${entry.name} (${entry.ours})`,
        actual: `${ref.name} (${ref.ours})`,
      });
    }
    const base = curveToleranceFor(manifest, ref.ours);
    if (!base) {
      throw new InputError(`no tolerance for metric ${JSON.stringify(ref.ours)}: add tolerances.curve.${ref.ours}`, {
        file: manifest.file ?? join(suiteDir, 'manifest.json'),
      });
    }
    const tol = widen(base, ref);
    const { covered, starts } = coveredPoints(ref, ours.steps);
    const averaged = averageOverWindows(ours, ref.ours, covered.steps, starts);
    return { ...compareMetric(ref.ours, averaged, covered, tol), metric: `${ref.name}:${ref.ours}` };
  });
}

function widen(base: CurveTolerance, ref: ReferenceFile): CurveTolerance {
  if (base.policy === 'deterministic') return base;
  return { ...base, atol: base.atol + ref.rounding.atol, rtol: base.rtol + ref.rounding.rtol };
}

/** The reference points whose whole window lies within the steps the run produced. */
function coveredPoints(ref: ReferenceFile, ourSteps: readonly number[]): { covered: Curve; starts: number[] } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of ourSteps) {
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const starts = windowStarts(ref.curve.steps, ref.interval);
  const keep = ref.curve.steps.map((s, j) => starts[j] >= lo && s <= hi);
  const values = ref.curve.metrics[ref.ours];
  return {
    covered: { steps: ref.curve.steps.filter((_, j) => keep[j]), metrics: { [ref.ours]: values.filter((_, j) => keep[j]) } },
    starts: starts.filter((_, j) => keep[j]),
  };
}
