/**
 * Step-by-step curve comparison with the two policies Megatron's functional tests use:
 * deterministic (bit equality; our own goldens on one backend) and approximate
 * (|a − r| ≤ atol + rtol·|r| per step, with a number of failing steps allowed, default zero).
 * A step the run did not produce counts as infinitely far off, and NaN never compares close:
 * a missing value must never pass.
 */
import type { Curve } from './curve.ts';
import type { CurvePolicy, MetricComparison } from './verdict.ts';

export interface CurveTolerance {
  policy: CurvePolicy;
  atol: number;
  rtol: number;
  allowedFailingSteps: number;
}

export const DETERMINISTIC: CurveTolerance = { policy: 'deterministic', atol: 0, rtol: 0, allowedFailingSteps: 0 };

export function isClose(actual: number, reference: number, tol: CurveTolerance): boolean {
  if (tol.policy === 'deterministic') return Object.is(actual, reference) || actual === reference;
  if (!Number.isFinite(actual) || !Number.isFinite(reference)) return false;
  return Math.abs(actual - reference) <= tol.atol + tol.rtol * Math.abs(reference);
}

/**
 * Compares one metric at every step of `reference`. `actual` is looked up by step number, so a
 * shorter run fails at the steps it lacks unless the caller truncated the reference on purpose.
 */
export function compareMetric(
  metric: string,
  actual: Curve,
  reference: Curve,
  tol: CurveTolerance,
): MetricComparison {
  const refValues = reference.metrics[metric] ?? [];
  const actValues = actual.metrics[metric];
  const indexOfStep = new Map<number, number>();
  actual.steps.forEach((s, i) => indexOfStep.set(s, i));

  let maxAbsDiff = 0;
  let maxRelDiff = 0;
  let maxAbsDiffStep: number | null = null;
  let failingSteps = 0;
  let firstFailingStep: number | null = null;

  for (let i = 0; i < reference.steps.length; i++) {
    const step = reference.steps[i];
    const ref = refValues[i];
    const at = indexOfStep.get(step);
    const act = at === undefined || actValues === undefined ? Number.POSITIVE_INFINITY : actValues[at];
    const abs = Number.isNaN(act) || Number.isNaN(ref) ? Number.POSITIVE_INFINITY : Math.abs(act - ref);
    const rel = ref === 0 ? (abs === 0 ? 0 : Number.POSITIVE_INFINITY) : abs / Math.abs(ref);
    if (maxAbsDiffStep === null || abs > maxAbsDiff) {
      maxAbsDiff = abs;
      maxAbsDiffStep = step;
    }
    if (rel > maxRelDiff) maxRelDiff = rel;
    if (!isClose(act, ref, tol)) {
      failingSteps++;
      if (firstFailingStep === null) firstFailingStep = step;
    }
  }

  const allowed = tol.policy === 'deterministic' ? 0 : tol.allowedFailingSteps;
  return {
    metric,
    policy: tol.policy,
    atol: tol.atol,
    rtol: tol.rtol,
    allowedFailingSteps: allowed,
    pass: reference.steps.length > 0 && refValues.length === reference.steps.length && failingSteps <= allowed,
    steps: reference.steps.length,
    maxAbsDiff,
    maxRelDiff,
    maxAbsDiffStep,
    failingSteps,
    firstFailingStep,
  };
}
