/**
 * The training check: replay the reference's batches from the initial weights for N steps and
 * compare every curve metric the reference recorded (loss, its parts, grad norm, lr, …) with the
 * suite's tolerance policy, plus imported references and our own golden for this backend.
 */
import { InputError } from '../errors.ts';
import type { Model } from '../models/model.ts';
import { weightMapFor } from '../families/registry.ts';
import { readJsonObject } from '../json-file.ts';
import { checkGolden } from './baseline/golden.ts';
import { compareWithReferences } from './baseline/compare-references.ts';
import { curveToleranceFor, type Manifest } from './baseline/manifest.ts';
import { compareMetric } from './compare-curve.ts';
import { noiseGrowthHint, suiteNoise } from './noise.ts';
import { curveFromRecords, readCurve, truncateCurve, type Curve, type StepRecord } from './curve.ts';
import { loadParams, type LoadOptions } from './load-model.ts';
import { requireFile, type Suite } from './suite.ts';
import { BatchSource } from './train/batches.ts';
import { parseHyperparams, type TrainSpec } from './train/hyperparams.ts';
import { train, type OptimizerPlace, type TrainOptions } from './train/loop.ts';
import { describeEstimate, modelShape, planTraining } from './train/memory-plan.ts';
import { tf } from '../backend/tf.ts';
import type { GoldenVerdict, MetricComparison, TrainVerdict } from './verdict.ts';

export interface TrainCheckOptions {
  steps?: number;
  weights?: string;
  /** Which golden this run is held to: the backend, and for a GPU backend its device class. */
  goldenKey: string;
  /** Where clipping and AdamW run (default host: float32-exact, identical on every backend). */
  optimizer?: OptimizerPlace;
  /** Recompute layers in the backward pass; the memory plan turns it on when only that fits. */
  recompute?: boolean;
  load?: LoadOptions;
  onStep?: (record: StepRecord, total: number) => void;
  /**
   * How this replay departs from the reference's recipe: frozen parameters, or (in the tests that
   * prove the gate) a porting bug — another optimizer setting, LR, clipping or gradient.
   */
  replay?: {
    spec?: (spec: TrainSpec) => TrainSpec;
    options?: Pick<TrainOptions, 'frozen' | 'lrAt' | 'editGradient'>;
  };
}

export interface TrainCheckResult {
  verdict: TrainVerdict;
  golden: GoldenVerdict;
  curve: Curve;
  reference: Curve;
}

/** Curve series that describe the run rather than measure it; never compared. */
const BOOKKEEPING = new Set(['iteration', 'time_ms', 'consumed_samples', 'lr_after_step']);

export async function checkTraining(model: Model, suite: Suite, manifest: Manifest, options: TrainCheckOptions): Promise<TrainCheckResult> {
  const referenceFull = readCurve(requireFile(suite, 'curve', 'reference curve (train_curve.json)'));
  const hyperFile = requireFile(suite, 'hyperparams', 'hyperparams.json');
  const spec = parseHyperparams(readJsonObject(hyperFile), hyperFile, model.specs, weightMapFor(model));
  const batches = BatchSource.open(requireFile(suite, 'batches', 'training batches (batches.safetensors)'), model.inputNames);
  const steps = options.steps ?? referenceFull.steps.length;
  if (!Number.isInteger(steps) || steps <= 0) throw new InputError('--steps must be a positive integer', { actual: String(steps) });
  if (steps > referenceFull.steps.length) {
    throw new InputError('more steps asked than the reference curve has', { file: suite.files.curve, expected: `≤ ${referenceFull.steps.length}`, actual: String(steps) });
  }
  if (steps > batches.steps) throw new InputError('more steps asked than there are batches', { file: batches.file, expected: `≤ ${batches.steps}`, actual: String(steps) });

  const optimizer = options.optimizer ?? 'host';
  // A device-optimizer run rounds the update in the backend's order: its own golden, never the host one's.
  const goldenKey = optimizer === 'device' ? `${options.goldenKey}-device-optimizer` : options.goldenKey;
  const weights = options.weights ?? requireFile(suite, 'weights', 'initial weights');
  // Before any weight is loaded: refuse (exit 2) a run that cannot fit, and recompute when only that fits.
  const memory = planTraining(modelShape(model, batches.at(0)), tf.getBackend(), optimizer, options.recompute ?? false, weights);
  const { params } = loadParams(model, weights, options.load);
  let result: Awaited<ReturnType<typeof train>>;
  try {
    const replaySpec = options.replay?.spec ? options.replay.spec(spec) : spec;
    result = await train(model, params, batches, { ...replaySpec, steps }, { ...options.replay?.options, steps, optimizer, recompute: memory.recompute, onStep: (r) => options.onStep?.(r, steps) });
  } finally {
    params.dispose();
  }
  const curve = curveFromRecords(result.records);
  const reference = truncateCurve(referenceFull, steps);

  const noise = suiteNoise(suite, referenceFull, options.goldenKey);
  const metrics: MetricComparison[] = [];
  for (const metric of Object.keys(reference.metrics)) {
    if (BOOKKEEPING.has(metric)) continue;
    const tol = curveToleranceFor(manifest, metric);
    if (!tol) throw new InputError(`no tolerance for curve metric ${JSON.stringify(metric)}: add tolerances.curve.${metric} to manifest.json`, { file: suite.files.curve });
    const m = compareMetric(metric, curve, reference, tol, noise.byMetric.get(metric));
    const hint = m.pass || m.envelope ? undefined : noiseGrowthHint(metric, suite.name, curve, reference, m.firstFailingStep, m.atol);
    metrics.push(hint ? { ...m, hint } : m);
  }
  metrics.push(...compareWithReferences(suite.dir, manifest, curve));
  const loss = metrics.find((m) => m.metric === 'loss');
  if (!loss) throw new InputError('reference curve has no "loss" series', { file: suite.files.curve });

  const verdict: TrainVerdict = {
    pass: !result.stoppedAt && metrics.every((m) => m.pass),
    steps: result.records.length,
    maxAbsDiff: loss.maxAbsDiff,
    maxRelDiff: loss.maxRelDiff,
    failingSteps: loss.failingSteps,
    firstFailingStep: loss.firstFailingStep,
    msPerStep: result.msPerStep,
    optimizer,
    memory: { estimate: describeEstimate(memory), recompute: memory.recompute, deviceBytes: memory.device, hostBytes: memory.host },
    metrics,
    ...(result.stoppedAt ? { stoppedAt: result.stoppedAt } : {}),
  };
  return { verdict, golden: checkGolden(suite.dir, goldenKey, curve), curve, reference };
}
