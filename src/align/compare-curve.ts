/**
 * Step-by-step curve comparison with the two policies Megatron's functional tests use:
 * deterministic (bit equality; our own goldens on one backend) and approximate
 * (|a − r| ≤ atol + rtol·|r| per step, with a number of failing steps allowed, default zero).
 * A step the run did not produce counts as infinitely far off, and NaN never compares close:
 * a missing value must never pass.
 *
 * An approximate tolerance can follow a measured precision instead of one number for all steps:
 * with an envelope rule and a noise curve, the tolerance at step s is
 *   max(floor.atol + floor.rtol·|r|, k · noise(s)),
 * noise(s) being a running maximum of a measured spread (the reference against its own float64
 * replay, or our one-ulp calibration), so the gate is strict where training is calm and widens
 * only from where the reference itself stops being precise.
 */
import type { Curve } from './curve.ts';
import type { CurvePolicy, EnvelopeBound, MetricComparison } from './verdict.ts';

/** How a measured noise becomes a tolerance: max(atol + rtol·|ref|, k · noise). */
export interface EnvelopeRule {
  k: number;
  atol: number;
  rtol: number;
}

export interface CurveTolerance {
  policy: CurvePolicy;
  /** Without an envelope: the tolerance at every step. */
  atol: number;
  rtol: number;
  allowedFailingSteps: number;
  /** Used when a noise curve for the metric is available; atol/rtol above are then not used. */
  envelope?: EnvelopeRule;
}

/** A measured precision per step: a running maximum, so it never narrows after a spike. */
export interface CurveNoise {
  /** Where it was measured: "train_curve.float64.json (loss)", "noise.wasm.json (loss)". */
  source: string;
  /** Step number → noise at that step. */
  byStep: ReadonlyMap<number, number>;
}

/** The running maximum of a series: monotone, so a spike widens the band from there on, never before. */
export function runningMax(values: readonly number[]): number[] {
  let max = 0;
  return values.map((v) => (max = Number.isFinite(v) ? Math.max(max, v) : Number.POSITIVE_INFINITY));
}

/** A noise curve over `steps` from per-step spreads (running maximum applied here). */
export function noiseCurve(source: string, steps: readonly number[], spread: readonly number[]): CurveNoise {
  const max = runningMax(spread);
  return { source, byStep: new Map(steps.map((s, i) => [s, max[i]])) };
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
 * With `noise` and an envelope rule, the tolerance follows the noise step by step; a step beyond
 * the noise curve takes its last value (a running maximum stays where it ended).
 */
export function compareMetric(
  metric: string,
  actual: Curve,
  reference: Curve,
  tol: CurveTolerance,
  noise?: CurveNoise,
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
  const rule = tol.policy === 'approximate' && noise && noise.byStep.size > 0 ? tol.envelope : undefined;
  const lastNoise = noise ? [...noise.byStep.values()].pop() ?? 0 : 0;
  const limits: number[] = [];
  const bounds: EnvelopeBound[] = [];

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
    let close: boolean;
    if (rule) {
      const floor = rule.atol + rule.rtol * Math.abs(ref);
      const widened = rule.k * (noise!.byStep.get(step) ?? lastNoise);
      const by = widened > floor ? 'noise' : 'floor';
      if (bounds.length === 0 || bounds[bounds.length - 1].by !== by) bounds.push({ fromStep: step, by });
      const limit = Math.max(floor, widened);
      limits.push(limit);
      close = Number.isFinite(act) && Number.isFinite(ref) && abs <= limit;
    } else {
      close = isClose(act, ref, tol);
    }
    if (!close) {
      failingSteps++;
      if (firstFailingStep === null) firstFailingStep = step;
    }
  }

  const allowed = tol.policy === 'deterministic' ? 0 : tol.allowedFailingSteps;
  return {
    metric,
    policy: tol.policy,
    atol: rule ? rule.atol : tol.atol,
    rtol: rule ? rule.rtol : tol.rtol,
    ...(rule ? { envelope: { source: noise!.source, k: rule.k, atol: rule.atol, rtol: rule.rtol, tolerance: limits, bounds } } : {}),
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
