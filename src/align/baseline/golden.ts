/**
 * Our own regression goldens, one file per backend: `golden.<backend>.json` =
 * `{ schema: 1, suite, backend, createdAt, fromRun, reason, steps, curve }`, `curve` in the
 * train_curve.json layout. One file per backend because bit-exact results only hold on one
 * backend (torchtitan and Megatron keep per-hardware files for the same reason).
 *
 * Numbers are written with JSON.stringify, whose shortest round-trip representation (ECMA-262
 * Number::toString) parses back to the same double: float32 values widened to double and full
 * doubles (grad norms accumulated in float64) both survive exactly. The one value that does not
 * is −0, written as 0; the deterministic comparison treats 0 and −0 as equal.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { compareMetric } from '../compare-curve.ts';
import { curveFromJson, curveToJson, type Curve } from '../curve.ts';
import type { GoldenVerdict } from '../verdict.ts';
import { InputError } from '../../errors.ts';
import { assertFiniteCurve, assertNoNulls } from './finite.ts';
import { describeZodIssue, parseJson, readBytes } from '../../json-file.ts';
import { loadManifest } from './manifest.ts';

/** Golden keys: a backend name ("wasm", "tensorflow-gpu"), for a GPU with its device class, and a suffix for the device optimizer. */
const BACKEND_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface Golden {
  schema: 1;
  suite: string;
  backend: string;
  createdAt: string;
  /** The run folder it was blessed from, relative to the working directory when inside it. */
  fromRun: string;
  reason: string;
  /** Number of steps in `curve`. */
  steps: number;
  curve: Curve;
}

const goldenFileSchema = z.strictObject({
  schema: z.literal(1),
  suite: z.string(),
  backend: z.string().regex(BACKEND_NAME),
  createdAt: z.string(),
  fromRun: z.string(),
  reason: z.string().min(1),
  steps: z.number().int().nonnegative(),
  curve: z.record(z.string(), z.unknown()),
});

export function goldenFileName(backend: string): string {
  if (!BACKEND_NAME.test(backend)) {
    throw new InputError('backend name cannot be part of a file name', { expected: BACKEND_NAME.source, actual: JSON.stringify(backend) });
  }
  return `golden.${backend}.json`;
}

export function goldenPath(suiteDir: string, backend: string): string {
  return join(suiteDir, goldenFileName(backend));
}

export function serializeGolden(golden: Golden): string {
  const { curve, ...head } = golden;
  // One number per line: a re-bless shows up in `git diff` as the steps that changed.
  return `${JSON.stringify({ ...head, curve: curveToJson(curve) }, null, 2)}\n`;
}

export function parseGolden(text: string, file: string): Golden {
  const parsed = goldenFileSchema.safeParse(parseJson(text, file));
  if (!parsed.success) {
    throw new InputError(describeZodIssue(parsed.error), { file, cause: parsed.error });
  }
  const g = parsed.data;
  assertNoNulls(g.curve, file);
  const curve = curveFromJson(g.curve, file);
  assertFiniteCurve(curve, file);
  if (g.steps !== curve.steps.length) {
    throw new InputError('"steps" disagrees with the curve', { file, tensor: 'steps', expected: String(curve.steps.length), actual: String(g.steps) });
  }
  return { ...g, curve };
}

export function readGolden(file: string): Golden {
  return parseGolden(readBytes(file).toString('utf8'), file);
}

/**
 * Compares a run against this backend's golden with the suite's golden policy (deterministic by
 * default), over the golden's steps that the run covered: a shorter run compares its prefix, a
 * longer run the golden's steps. A metric the golden has and the run lacks fails. No golden for
 * this backend gives `present: false, pass: false`: the caller reports it, it is never a pass.
 */
export function checkGolden(suiteDir: string, backend: string, ours: Curve): GoldenVerdict {
  const file = goldenPath(suiteDir, backend);
  if (!existsSync(file)) return { backend, file, present: false, pass: false, metrics: [] };
  const golden = readGolden(file);
  if (golden.backend !== backend) {
    throw new InputError('golden was written for another backend', { file, tensor: 'backend', expected: backend, actual: golden.backend });
  }
  const tol = loadManifest(suiteDir).tolerances.golden;
  const covered = stepsWithin(golden.curve, ours.steps);
  const metrics = Object.keys(golden.curve.metrics).map((m) => compareMetric(m, ours, covered, tol));
  return { backend, file, present: true, pass: metrics.length > 0 && metrics.every((m) => m.pass), metrics };
}

/** The points of `curve` whose step lies within [min, max] of `steps`. */
export function stepsWithin(curve: Curve, steps: readonly number[]): Curve {
  if (steps.length === 0) return { steps: [], metrics: Object.fromEntries(Object.keys(curve.metrics).map((k) => [k, []])) };
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of steps) {
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const keep = curve.steps.map((s) => s >= lo && s <= hi);
  const metrics: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(curve.metrics)) metrics[k] = v.filter((_, i) => keep[i]);
  return { steps: curve.steps.filter((_, i) => keep[i]), metrics };
}
