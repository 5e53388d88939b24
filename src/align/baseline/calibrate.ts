/**
 * `npm run baseline -- calibrate <suite>`: measures the float32 noise floor of a suite's training
 * curve on the current backend, step by step. With --write the per-step spread is saved as
 * `noise.<backend>.json`, from which the curve gate builds its envelope (max(floor, k · running
 * maximum of the spread)) where the suite has no float64 replay of its reference. The table also
 * shows what one uniform tolerance would have to be (the proposal below), for comparison.
 *
 * Method. The suite's training replay (the same code `align` runs) is run 1 + K times from the
 * suite's initial weights: run 0 unperturbed; run k = 1..K flips the last mantissa bit of each
 * finite, nonzero weight with probability 1/2 (a seeded mulberry32 stream, seed k, walking the
 * parameters in model order) — once before training, and again after every optimizer update. A
 * flipped weight moves to an adjacent float32, exactly one ulp; the direction follows the bit it
 * had, so the kick has no bias. Exact zeros are left alone: an implementation that rounds
 * differently still keeps an exact 0 exactly 0. Half of the elements, because an implementation
 * that rounds differently differs from the reference in a large share of the weights; every step,
 * because it does so at every op of every step, not once at the start (a single kick at step 0
 * measured 7.7e-5 on bert's loss, where PyTorch lands 8.7e-4 away; kicking every step, 2.1e-4).
 * Between kicks every run is the same deterministic float32 computation, so what separates run k
 * from run 0 is float32 rounding acting on slightly different numbers.
 *
 * The spread of a metric at step s is max_k |run_k(s) − run_0(s)|. Proposed tolerances (policy
 * approximate, no failing steps allowed) are SAFETY = 5 times the largest spread over the run:
 * K runs sample the spread's tail only K times, and one ulp per weight per step still rounds less
 * than a whole different implementation does (PyTorch on bert: 4x the per-step-kicked spread):
 *   - total loss and every loss part: atol = 3 · max_s spread(s), rtol 0 (a loss keeps its
 *     magnitude over a run, so its rounding noise does too);
 *   - grad_norm: rtol = 3 · max_s spread(s)/|run_0(s)|, atol 0 (a sum of squares over every
 *     gradient: its noise grows with its value, largest at gradient spikes);
 *   - lr: schedule arithmetic that the weights cannot move: the default rtol 1e-9 (atol 1e-15
 *     keeps lr(0) = 0 comparable); its spread is still measured and must be 0;
 *   - anything else (num_zeros) is measured only: its gap to a reference is structural (which
 *     ~1e-11 gradients an implementation rounds to exactly 0), not rounding drift.
 * No proposal is below what float32 can resolve: one ulp of the metric's largest |value| (atol),
 * or float32 epsilon 2^-23 (rtol). Proposals are rounded up to two significant digits.
 */
import { tf } from '../../backend/tf.ts';
import { InputError } from '../../errors.ts';
import { readJsonObject } from '../../json-file.ts';
import type { ParamStore } from '../../models/params.ts';
import { compareMetric, DETERMINISTIC, type CurveTolerance } from '../compare-curve.ts';
import { curveFromRecords, readCurve, truncateCurve, type Curve, type StepRecord } from '../curve.ts';
import { modelFromConfig, weightMapFor } from '../../families/registry.ts';
import { loadParams } from '../load-model.ts';
import { loadSuite, requireFile } from '../suite.ts';
import { BatchSource } from '../train/batches.ts';
import { parseHyperparams } from '../train/hyperparams.ts';
import { train } from '../train/loop.ts';
import type { ParamState } from '../train/optimizer.ts';
import { LR_TOLERANCE } from './defaults.ts';
import { appendHistory, timestamp, type HistoryEntry } from './history.ts';
import { curveToleranceFor, loadManifest, type Manifest } from './manifest.ts';
import { noiseFileName, noiseFileSchema, type NoiseFile } from '../noise.ts';
import { writeFileAtomic } from './atomic.ts';
import { basename, join } from 'node:path';

export const SAFETY = 5;
export const PERTURBED_FRACTION = 0.5;
export const DEFAULT_RUNS = 3;
const FLOAT32_EPS = 2 ** -23;

// ---------------------------------------------------------------------------------------------
// The kick: one ulp on a seeded random share of the weights.

/** mulberry32: a tiny seeded PRNG, identical on every platform, so a run's kick is reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Flipped {
  values: Float32Array;
  /** Elements changed. */
  flipped: number;
  /** Elements that could be (finite and nonzero). */
  eligible: number;
}

/**
 * A copy of `values` with the last mantissa bit flipped in each finite nonzero element that
 * `random() < fraction` picks. `random` is drawn once per element, eligible or not, so which
 * element a draw belongs to does not depend on the values.
 */
export function flipLastBits(values: Float32Array, random: () => number, fraction: number): Flipped {
  const out = Float32Array.from(values);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  let flipped = 0;
  let eligible = 0;
  for (let i = 0; i < out.length; i++) {
    const pick = random() < fraction;
    if (out[i] === 0 || !Number.isFinite(out[i])) continue;
    eligible++;
    if (!pick) continue;
    bits[i] ^= 1;
    flipped++;
  }
  return { values: out, flipped, eligible };
}

export interface Perturbation {
  run: number;
  /** null for the unperturbed run. */
  seed: number | null;
  flipped: number;
  eligible: number;
}

/** Sets every parameter to its initial value, kicked with `seed` (or exactly, for null). */
function setInitialWeights(params: ParamStore, initial: ReadonlyMap<string, Float32Array>, run: number, seed: number | null, fraction: number): Perturbation {
  const random = seed === null ? null : mulberry32(seed);
  let flipped = 0;
  let eligible = 0;
  for (const spec of params.specs) {
    const start = initial.get(spec.name)!;
    const kicked = random ? flipLastBits(start, random, fraction) : { values: start, flipped: 0, eligible: 0 };
    flipped += kicked.flipped;
    eligible += kicked.eligible;
    const v = params.variable(spec.name);
    tf.tidy(() => v.assign(tf.tensor(kicked.values, v.shape, 'float32')));
  }
  return { run, seed, flipped, eligible };
}

/** After each optimizer update, flip the last bit of a random share of every parameter, in place. */
function kickEveryUpdate(random: () => number, fraction: number): (param: ParamState) => void {
  return (p) => p.value.set(flipLastBits(p.value, random, fraction).values);
}

// ---------------------------------------------------------------------------------------------
// From K + 1 curves to a spread and a proposal.

export interface Spread {
  /** max_k |run_k − run_0| per step. */
  byStep: number[];
  max: number;
  maxStep: number | null;
  /** max over steps of byStep / |run_0| (steps where run_0 is 0 are skipped). */
  maxRel: number;
  maxRelStep: number | null;
  last: number;
}

export function spreadOf(steps: readonly number[], base: readonly number[], others: ReadonlyArray<readonly number[]>): Spread {
  const byStep = base.map((b, i) => Math.max(0, ...others.map((o) => Math.abs(o[i] - b))));
  let max = 0;
  let maxStep: number | null = null;
  let maxRel = 0;
  let maxRelStep: number | null = null;
  byStep.forEach((s, i) => {
    if (maxStep === null || s > max) [max, maxStep] = [s, steps[i]];
    if (base[i] === 0) return;
    const rel = s / Math.abs(base[i]);
    if (maxRelStep === null || rel > maxRel) [maxRel, maxRelStep] = [rel, steps[i]];
  });
  return { byStep, max, maxStep, maxRel, maxRelStep, last: byStep.length ? byStep[byStep.length - 1] : 0 };
}

export type MetricForm = 'absolute' | 'relative' | 'schedule' | 'measured';

export function metricForm(metric: string): MetricForm {
  if (metric === 'loss' || metric.endsWith('_loss')) return 'absolute';
  if (metric === 'grad_norm') return 'relative';
  if (metric === 'lr') return 'schedule';
  return 'measured';
}

/** Distance from |x| (as float32) to the next float32 up: the finest difference float32 shows there. */
export function ulp32(x: number): number {
  const f = new Float32Array([Math.abs(x)]);
  const bits = new Uint32Array(f.buffer);
  const at = f[0];
  bits[0] += 1;
  return f[0] - at;
}

/** The smallest number ≥ x with `digits` significant decimal digits: tolerances people can read. */
export function ceilSignificant(x: number, digits = 2): number {
  if (!(x > 0) || !Number.isFinite(x)) return x;
  const exp = Math.floor(Math.log10(x)) - (digits - 1);
  // x / 10^exp is rounded, so k can be one off either way: settle it on the decimal values.
  const at = (k: number) => Number(`${k}e${exp}`);
  let k = Math.ceil(x / 10 ** exp);
  while (k > 1 && at(k - 1) >= x) k--;
  while (at(k) < x) k++;
  return at(k);
}

export function proposeTolerance(form: MetricForm, base: readonly number[], spread: Spread, safety: number): CurveTolerance | null {
  switch (form) {
    case 'measured':
      return null;
    case 'schedule':
      return { ...LR_TOLERANCE };
    case 'absolute': {
      const scale = Math.max(0, ...base.map(Math.abs));
      return { policy: 'approximate', atol: ceilSignificant(Math.max(safety * spread.max, ulp32(scale))), rtol: 0, allowedFailingSteps: 0 };
    }
    case 'relative': {
      // Steps where the value is exactly 0 cannot be covered by rtol: they get an atol of their own.
      const atZero = Math.max(0, ...spread.byStep.filter((_, i) => base[i] === 0));
      return {
        policy: 'approximate',
        atol: ceilSignificant(safety * atZero),
        rtol: ceilSignificant(Math.max(safety * spread.maxRel, FLOAT32_EPS)),
        allowedFailingSteps: 0,
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The calibration itself.

export interface ReferenceGap {
  /** Steps compared: the overlap of the run with train_curve.json. */
  steps: number;
  maxAbsDiff: number;
  maxAbsDiffStep: number | null;
  maxRelDiff: number;
  failingStepsCurrent: number | null;
  failingStepsProposed: number | null;
}

export interface MetricCalibration {
  metric: string;
  form: MetricForm;
  spread: Spread;
  proposed: CurveTolerance | null;
  current: CurveTolerance | null;
  /** Run 0 against the suite's reference curve, when it has this metric. */
  reference: ReferenceGap | null;
}

export interface CalibrationOptions {
  suiteDir: string;
  backend: string;
  steps?: number;
  /** Perturbed runs (K); run 0, unperturbed, comes on top. */
  runs?: number;
  safety?: number;
  fraction?: number;
  onRunStart?: (perturbation: Perturbation, params: ParamStore) => void | Promise<void>;
  onStep?: (run: number, record: StepRecord, total: number) => void;
}

export interface Calibration {
  suite: string;
  suiteDir: string;
  backend: string;
  steps: number;
  perturbedRuns: number;
  safety: number;
  fraction: number;
  perturbations: Perturbation[];
  msPerStep: number;
  metrics: MetricCalibration[];
  /** Run 0 first. */
  curves: Curve[];
}

export async function calibrate(options: CalibrationOptions): Promise<Calibration> {
  const runs = options.runs ?? DEFAULT_RUNS;
  const safety = options.safety ?? SAFETY;
  const fraction = options.fraction ?? PERTURBED_FRACTION;
  if (!Number.isInteger(runs) || runs < 1) throw new InputError('--runs must be a whole number ≥ 1', { actual: String(runs) });
  if (!(safety >= 1)) throw new Error(`calibrate: safety factor ${safety} < 1 would propose less than was measured`);
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`calibrate: perturbed fraction ${fraction} outside (0, 1]`);

  const suite = loadSuite(options.suiteDir);
  // The model first: a family we cannot build is the error to report, whatever else is missing.
  const model = modelFromConfig(requireFile(suite, 'config', 'config.json'));
  const manifest = loadManifest(suite.dir);
  const hyperFile = requireFile(suite, 'hyperparams', 'hyperparams.json');
  const spec = parseHyperparams(readJsonObject(hyperFile), hyperFile, model.specs, weightMapFor(model));
  const batches = BatchSource.open(requireFile(suite, 'batches', 'training batches (batches.safetensors)'), model.inputNames);
  const reference = suite.files.curve ? readCurve(suite.files.curve) : null;
  const steps = options.steps ?? Math.min(batches.steps, reference?.steps.length ?? Number.POSITIVE_INFINITY);
  if (!Number.isInteger(steps) || steps <= 0) throw new InputError('--steps must be a positive integer', { actual: String(steps) });
  if (steps > batches.steps) throw new InputError('more steps asked than there are batches', { file: batches.file, expected: `≤ ${batches.steps}`, actual: String(steps) });

  const { params } = loadParams(model, requireFile(suite, 'weights', 'initial weights'));
  const curves: Curve[] = [];
  const perturbations: Perturbation[] = [];
  let ms = 0;
  try {
    const initial = await params.snapshot();
    for (let run = 0; run <= runs; run++) {
      const perturbation = setInitialWeights(params, initial, run, run === 0 ? null : run, fraction);
      perturbations.push(perturbation);
      await await options.onRunStart?.(perturbation, params);
      const kick = run === 0 ? undefined : kickEveryUpdate(mulberry32(1_000_003 * run), fraction);
      const result = await train(model, params, batches, { ...spec, steps }, { steps, afterUpdate: kick, onStep: (r) => options.onStep?.(run, r, steps) });
      if (result.stoppedAt) {
        throw new InputError(`calibration run ${run} stopped at step ${result.stoppedAt.step}: ${result.stoppedAt.reason}`, { file: suite.dir });
      }
      curves.push(curveFromRecords(result.records));
      ms += result.msPerStep;
    }
  } finally {
    params.dispose();
  }
  const metrics = Object.keys(curves[0].metrics).map((metric) => calibrateMetric(metric, curves, reference, manifest, safety));
  return { suite: suite.name, suiteDir: suite.dir, backend: options.backend, steps, perturbedRuns: runs, safety, fraction, perturbations, msPerStep: ms / (runs + 1), metrics, curves };
}

function calibrateMetric(metric: string, curves: readonly Curve[], reference: Curve | null, manifest: Manifest, safety: number): MetricCalibration {
  const [base, ...others] = curves;
  const form = metricForm(metric);
  const spread = spreadOf(base.steps, base.metrics[metric], others.map((c) => c.metrics[metric]));
  const proposed = proposeTolerance(form, base.metrics[metric], spread, safety);
  const current = curveToleranceFor(manifest, metric) ?? null;
  return { metric, form, spread, proposed, current, reference: referenceGap(metric, base, reference, current, proposed) };
}

function referenceGap(metric: string, run0: Curve, reference: Curve | null, current: CurveTolerance | null, proposed: CurveTolerance | null): ReferenceGap | null {
  if (!reference || !(metric in reference.metrics)) return null;
  const overlap = truncateCurve(reference, Math.min(run0.steps.length, reference.steps.length));
  // The differences compareMetric reports do not depend on the tolerance; the failing counts do.
  const gap = compareMetric(metric, run0, overlap, current ?? DETERMINISTIC);
  return {
    steps: gap.steps,
    maxAbsDiff: gap.maxAbsDiff,
    maxAbsDiffStep: gap.maxAbsDiffStep,
    maxRelDiff: gap.maxRelDiff,
    failingStepsCurrent: current ? gap.failingSteps : null,
    failingStepsProposed: proposed ? compareMetric(metric, run0, overlap, proposed).failingSteps : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Output: a table, JSON, and the manifest write.

function sci(x: number | null | undefined): string {
  if (x === null || x === undefined) return '-';
  return x === 0 ? '0' : x.toExponential(2);
}

function tolText(t: CurveTolerance | null): [string, string] {
  if (!t) return ['-', '-'];
  if (t.policy === 'deterministic') return ['exact', 'exact'];
  return [sci(t.atol), sci(t.rtol)];
}

export function formatCalibration(c: Calibration): string {
  const seeds = c.perturbations.filter((p) => p.seed !== null).map((p) => p.seed);
  const head = [
    `calibrate ${c.suite} on ${c.backend}: 1 unperturbed + ${c.perturbedRuns} perturbed runs × ${c.steps} steps (${c.msPerStep.toFixed(1)} ms/step)`,
    `kick: last mantissa bit flipped in a random ${Math.round(c.fraction * 100)}% of nonzero weights, before training and after every update (seeds ${seeds.join(', ')}); spread = max_k |run_k − run_0| per step; proposal = ${c.safety} × max spread`,
    '',
  ];
  const header = ['metric', 'max spread', 'at step', 'max rel', 'at step', 'last step', 'proposed atol', 'rtol', 'current atol', 'rtol', 'ref max|diff|', 'at step', 'ref fails now/proposed'];
  const rows = c.metrics.map((m) => {
    const [pa, pr] = tolText(m.proposed);
    const [ca, cr] = tolText(m.current);
    const r = m.reference;
    return [
      m.metric,
      sci(m.spread.max),
      String(m.spread.maxStep ?? '-'),
      sci(m.spread.maxRel),
      String(m.spread.maxRelStep ?? '-'),
      sci(m.spread.last),
      pa,
      pr,
      ca,
      cr,
      r ? sci(r.maxAbsDiff) : 'no reference',
      r ? String(r.maxAbsDiffStep ?? '-') : '',
      r ? `${r.failingStepsCurrent ?? '-'}/${r.failingStepsProposed ?? '-'}` : '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  const notes: string[] = [];
  for (const m of c.metrics) {
    const r = m.reference;
    if (!r) continue;
    if ((r.failingStepsCurrent ?? 0) > (m.current?.allowedFailingSteps ?? 0)) {
      notes.push(`note: ${m.metric}: the current tolerance already fails the reference at ${r.failingStepsCurrent} of ${r.steps} steps`);
    }
    if ((r.failingStepsProposed ?? 0) > 0) {
      notes.push(`note: ${m.metric}: the reference is further away than the proposal at ${r.failingStepsProposed} of ${r.steps} steps (the gap to it is more than this backend's own rounding noise)`);
    }
  }
  return [...head, line(header), ...rows.map(line), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

/** The calibration as JSON, with the per-step spread of every metric for plotting. */
export function calibrationJson(c: Calibration): Record<string, unknown> {
  return {
    schema: 1,
    suite: c.suite,
    backend: c.backend,
    steps: c.steps,
    perturbedRuns: c.perturbedRuns,
    safety: c.safety,
    kick: { rule: 'flip-last-mantissa-bit', fraction: c.fraction, runs: c.perturbations },
    msPerStep: c.msPerStep,
    metrics: Object.fromEntries(
      c.metrics.map((m) => {
        const s = m.spread;
        return [
          m.metric,
          {
            form: m.form,
            maxSpread: s.max,
            maxSpreadStep: s.maxStep,
            maxRelSpread: s.maxRel,
            maxRelSpreadStep: s.maxRelStep,
            lastSpread: s.last,
            proposed: m.proposed,
            current: m.current,
            reference: m.reference,
            spread: s.byStep,
          },
        ];
      }),
    ),
  };
}

/** Metrics whose tolerance can follow a noise curve: losses and the gradient norm, not the LR schedule or counts. */
function followsNoise(m: MetricCalibration): boolean {
  return m.form === 'absolute' || m.form === 'relative';
}

/**
 * Saves the measured spread, per step and metric, as `noise.<backend>.json` in the suite
 * (atomically), then logs it in history.jsonl. The curve gate reads it as the envelope's noise
 * where the suite has no float64 replay of the reference (noise.ts).
 */
export function writeCalibration(c: Calibration): HistoryEntry {
  const file = join(c.suiteDir, noiseFileName(c.backend));
  const noise: NoiseFile = {
    schema: 1,
    suite: c.suite,
    backend: c.backend,
    createdAt: timestamp(),
    method: `max_k |run_k − run_0| over 1 + ${c.perturbedRuns} replays, run k kicked by one ulp on ${Math.round(c.fraction * 100)}% of the weights before training and after every update (npm run baseline -- calibrate)`,
    steps: c.curves[0].steps,
    spread: Object.fromEntries(c.metrics.filter(followsNoise).map((m) => [m.metric, m.spread.byStep])),
  };
  noiseFileSchema.parse(noise);
  writeFileAtomic(file, `${JSON.stringify(noise)}\n`);
  const entry: HistoryEntry = {
    when: noise.createdAt,
    action: 'calibrate',
    reason: `calibrate: float32 noise of 1 + ${c.perturbedRuns} one-ulp-perturbed runs × ${c.steps} steps on ${c.backend}, saved per step as ${basename(file)}`,
    backend: c.backend,
    steps: c.steps,
    perturbedRuns: c.perturbedRuns,
    file: basename(file),
    maxSpread: Object.fromEntries(c.metrics.filter(followsNoise).map((m) => [m.metric, m.spread.max])),
  };
  appendHistory(c.suiteDir, entry);
  return entry;
}
