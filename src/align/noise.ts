/**
 * Where a suite's measured precision comes from, per curve metric:
 *  1. `train_curve.float64.json`: the reference training replayed in float64 (a user makes it with
 *     `model.double()`). |ref32 − ref64| per step is the float32 reference's own rounding error.
 *     Loss parts have no float64 series of their own; they take the total loss's.
 *  2. `noise.<golden key>.json`, written by `npm run baseline -- calibrate --write`: the spread of
 *     our own replays kicked by one ulp at every update, on that backend (or, when this backend
 *     has none, the wasm file, else the first there is: the spread measures how training amplifies
 *     rounding, which depends on the model far more than on the backend).
 * The reference's own precision wins when both exist: it is measured on the reference.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { describeZodIssue, readJsonFile } from '../json-file.ts';
import { noiseCurve, type CurveNoise } from './compare-curve.ts';
import { readCurve, type Curve } from './curve.ts';
import type { Suite } from './suite.ts';

export const CURVE64_FILE = 'train_curve.float64.json';
const NOISE_FILE = /^noise\.([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.json$/;

export function noiseFileName(goldenKey: string): string {
  return `noise.${goldenKey}.json`;
}

/** What calibrate saves: per metric, the spread at each step (not yet a running maximum). */
export const noiseFileSchema = z.strictObject({
  schema: z.literal(1),
  suite: z.string(),
  backend: z.string(),
  createdAt: z.string(),
  method: z.string(),
  steps: z.array(z.number().int().nonnegative()),
  spread: z.record(z.string(), z.array(z.number().nonnegative())),
});
export type NoiseFile = z.infer<typeof noiseFileSchema>;

export function readNoiseFile(file: string): NoiseFile {
  const parsed = noiseFileSchema.safeParse(readJsonFile(file));
  if (!parsed.success) throw new InputError(describeZodIssue(parsed.error), { file, cause: parsed.error });
  for (const [metric, values] of Object.entries(parsed.data.spread)) {
    if (values.length !== parsed.data.steps.length) {
      throw new InputError('spread and steps differ in length', { file, tensor: `spread.${metric}`, expected: String(parsed.data.steps.length), actual: String(values.length) });
    }
  }
  return parsed.data;
}

export interface NoiseSources {
  /** Noise curves by our metric name; a metric absent here has no measured precision. */
  byMetric: Map<string, CurveNoise>;
}

/** Every metric's noise for a suite, run on the backend whose golden key is `goldenKey`. */
export function suiteNoise(suite: Suite, reference: Curve, goldenKey: string): NoiseSources {
  const byMetric = new Map<string, CurveNoise>();
  const calibration = calibrationFile(suite.dir, goldenKey);
  if (calibration) {
    const noise = readNoiseFile(calibration);
    for (const [metric, spread] of Object.entries(noise.spread)) {
      byMetric.set(metric, noiseCurve(`${basename(calibration)} (${metric})`, noise.steps, spread));
    }
  }
  const file64 = suite.files.curve64;
  if (file64) {
    const ref64 = readCurve(file64);
    for (const metric of Object.keys(reference.metrics)) {
      const own = metric in ref64.metrics ? metric : metric.endsWith('_loss') && 'loss' in ref64.metrics ? 'loss' : undefined;
      if (own === undefined) continue;
      byMetric.set(metric, float64Noise(reference, ref64, own, file64));
    }
  }
  return { byMetric };
}

/** |ref32 − ref64| of one series, matched by step number; a step the float64 run lacks is an error. */
function float64Noise(ref32: Curve, ref64: Curve, metric: string, file: string): CurveNoise {
  const at64 = new Map(ref64.steps.map((s, i) => [s, ref64.metrics[metric][i]]));
  const steps: number[] = [];
  const spread: number[] = [];
  ref32.steps.forEach((step, i) => {
    const v64 = at64.get(step);
    if (v64 === undefined) return;
    steps.push(step);
    spread.push(Math.abs(ref32.metrics[metric][i] - v64));
  });
  if (steps.length === 0) throw new InputError('the float64 curve shares no step with the reference curve', { file, tensor: metric });
  return noiseCurve(`${basename(file)} (${metric})`, steps, spread);
}

function calibrationFile(suiteDir: string, goldenKey: string): string | undefined {
  const own = join(suiteDir, noiseFileName(goldenKey));
  if (existsSync(own)) return own;
  const all = readdirSync(suiteDir).filter((n) => NOISE_FILE.test(n)).sort();
  const pick = all.includes(noiseFileName('wasm')) ? noiseFileName('wasm') : all[0];
  return pick ? join(suiteDir, pick) : undefined;
}

/**
 * A failure without an envelope whose gap starts quiet and grows — the shape float32 rounding
 * noise takes as training amplifies it — gets a hint naming what would measure that noise. A gap
 * that jumps within the first steps is a bug's shape and gets none.
 */
export function noiseGrowthHint(metric: string, suiteName: string, actual: Curve, reference: Curve, firstFailingStep: number | null, atol: number): string | undefined {
  if (firstFailingStep === null || firstFailingStep < 20) return undefined;
  const ours = new Map(actual.steps.map((s, i) => [s, actual.metrics[metric]?.[i]]));
  let early = 0;
  reference.steps.forEach((step, i) => {
    if (step >= firstFailingStep / 2) return;
    const a = ours.get(step);
    early = Math.max(early, a === undefined ? Number.POSITIVE_INFINITY : Math.abs(a - reference.metrics[metric][i]));
  });
  if (!(early <= atol / 10)) return undefined;
  return `the gap grows from a quiet start (≤ ${early.toExponential(1)} before step ${Math.floor(firstFailingStep / 2)}), the shape of float32 rounding noise that training amplifies: measure it with the reference replayed in float64 (${CURVE64_FILE}) or with \`npm run baseline -- calibrate ${suiteName} --write\`, and the tolerance will follow it step by step`;
}
