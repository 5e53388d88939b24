/**
 * One align run of one suite, end to end: forward parity, the training curve, our golden, then
 * the verdict and its report folder. The CLI, the nightly check and the tests all come through
 * here, so they cannot disagree about what "aligned" means.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { writeFileAtomic } from './baseline/atomic.ts';
import { selectBackend } from '../backend/select.ts';
import { loadManifest } from './baseline/manifest.ts';
import { curveToJson, type Curve, type StepRecord } from './curve.ts';
import { describeAdapterLine } from '../backend/webgpu.ts';
import { describeEnvironment } from './environment.ts';
import { checkForward, type ForwardRun } from './forward-check.ts';
import { checkGeneration, type GenerationRun } from './generation-check.ts';
import { modelFromConfig, modelFromMegatron } from '../families/registry.ts';
import type { Model } from '../models/model.ts';
import type { OrtSettings } from '../reference/onnx-runtime.ts';
import { openCheckpoint } from '../weightmap/readers/detect.ts';
import { InputError } from '../errors.ts';
import { writeRunReports } from './report/write.ts';
import { loadSuite, readVariants, requireFile, type Suite } from './suite.ts';
import { checkTraining } from './train-check.ts';
import type { OptimizerPlace } from './train/loop.ts';
import type { Verdict } from './verdict.ts';

export type Check = 'forward' | 'train' | 'generation';
export const CHECKS: readonly Check[] = ['forward', 'train', 'generation'];

export interface RunSuiteOptions {
  suiteDir: string;
  steps?: number;
  /** Where clipping and AdamW run: host (default) or device (GPU-sized models). */
  optimizer?: OptimizerPlace;
  /** Recompute each layer in the backward pass (less memory, same gradients); on anyway when only that fits. */
  recompute?: boolean;
  /** Run only this check (default: every check the suite has references for). */
  only?: Check;
  backend?: string;
  /** Initial weights from this checkpoint instead of the suite's own. */
  weights?: string;
  /**
   * Forward reference: "stored" (forward_*.safetensors), "onnx" (the suite's model.onnx, or
   * encoder.onnx + decoder.onnx, run live), or ONNX files (comma-separated, run in order). Default:
   * stored when the suite has it, else the suite's ONNX export.
   */
  reference?: string;
  /** How onnxruntime runs a live reference. */
  ort?: OrtSettings;
  /** Where run folders go: <reportsDir>/<suite>/<runDirName>. */
  reportsDir: string;
  runDirName?: string;
  /** Write the HTML/JUnit/Markdown reports into the run folder (runSuite; verdict.json and curves always). */
  reports?: boolean;
  allowIncomplete?: boolean;
  log?: (line: string) => void;
  onStep?: (record: StepRecord, total: number) => void;
}

export interface AlignResult {
  verdict: Verdict;
  curve?: Curve;
  referenceCurve?: Curve;
}

export interface RunSuiteResult extends AlignResult {
  runDir: string;
}

/** Aligns a suite and writes its run folder. */
export async function runSuite(options: RunSuiteOptions): Promise<RunSuiteResult> {
  const result = await alignSuite(options);
  return { ...result, runDir: await writeRunFolder(options, result) };
}

/**
 * The run folder <reportsDir>/<suite>/<runDirName>: the curves, the reports, then verdict.json,
 * each written whole or not at all. The verdict comes last, so a folder holding one is complete
 * and a killed run never leaves a truncated verdict for bless or the dashboard to read.
 */
export async function writeRunFolder(options: Pick<RunSuiteOptions, 'reportsDir' | 'runDirName' | 'reports'>, result: AlignResult): Promise<string> {
  const { verdict, curve, referenceCurve } = result;
  const runDir = resolve(options.reportsDir, verdict.suite, options.runDirName ?? timestamp(new Date(verdict.startedAt)));
  mkdirSync(runDir, { recursive: true });
  if (curve) writeFileAtomic(join(runDir, 'curve.json'), `${JSON.stringify(curveToJson(curve))}\n`);
  if (referenceCurve) writeFileAtomic(join(runDir, 'reference-curve.json'), `${JSON.stringify(curveToJson(referenceCurve))}\n`);
  if (options.reports !== false) await writeRunReports(runDir, { verdict, curve, referenceCurve });
  writeFileAtomic(join(runDir, 'verdict.json'), `${JSON.stringify(verdict, null, 2)}\n`);
  return runDir;
}

/** One align run of a suite, writing nothing: forward parity, the curve, our golden, generation. */
export async function alignSuite(options: Omit<RunSuiteOptions, 'reportsDir' | 'runDirName' | 'reports'>): Promise<AlignResult> {
  const startedAt = new Date();
  const log = options.log ?? (() => {});
  const backend = await selectBackend(options.backend);
  const suite = loadSuite(options.suiteDir);
  const manifest = loadManifest(suite.dir);
  const model = modelForSuite(suite, options.weights);
  const load = { allowIncomplete: options.allowIncomplete };
  log(`suite ${suite.name} (${model.family}) on backend ${backend.name}${backend.adapter ? ` (${describeAdapterLine(backend.adapter)})` : ''}`);

  const verdict: Verdict = {
    schema: 1,
    suite: suite.name,
    model: model.family,
    backend: backend.name,
    pass: false,
    startedAt: startedAt.toISOString(),
    finishedAt: startedAt.toISOString(),
    suiteDir: suite.dir,
    environment: describeEnvironment(backend, suite),
  };
  const wants = (check: Check) => options.only === undefined || options.only === check;
  let curve: Curve | undefined;
  let referenceCurve: Curve | undefined;

  const onnx = onnxReferenceFiles(suite, options.reference);
  if (wants('forward') && (options.only === 'forward' || suite.files.forwardInitial || onnx)) {
    if (onnx) log(`forward reference: ${onnx.join(', ')} run by onnxruntime`);
    const runs = onnx ? [{ label: 'initial', weightsPath: options.weights ?? onnx, onnx }] : forwardRuns(suite, options.weights);
    verdict.forward = await checkForward(model, requireFile(suite, 'evalInputs', 'eval inputs (eval_inputs.safetensors)'), runs, manifest.tolerances.forward, { ...load, ort: options.ort });
  }
  if (wants('train') && (options.only === 'train' || suite.files.curve)) {
    const result = await checkTraining(model, suite, manifest, { steps: options.steps, weights: options.weights, goldenKey: backend.goldenKey, optimizer: options.optimizer, recompute: options.recompute, load, onStep: options.onStep });
    verdict.train = result.verdict;
    verdict.golden = result.golden;
    curve = result.curve;
    referenceCurve = result.reference;
  }

  if (wants('generation') && (options.only === 'generation' || (suite.files.generationTensors && model.generation))) {
    log('generation: greedy decoding with and without the key/value cache');
    const { logitAtol, logitRtol } = manifest.tolerances.generation;
    const envelope = manifest.tolerances.forward.envelope;
    verdict.generation = await checkGeneration(model, requireFile(suite, 'generationTensors', 'reference generations (generation.safetensors)'), generationRuns(suite, options.weights), { atol: logitAtol, rtol: logitRtol, ...(envelope ? { envelope } : {}) }, load);
  }

  const sections = [verdict.forward, verdict.train, verdict.generation];
  const ran = sections.filter((s) => s !== undefined);
  // A missing golden is reported, not failed: a new backend has none until someone blesses one.
  const goldenOk = !verdict.golden || !verdict.golden.present || verdict.golden.pass;
  verdict.pass = ran.length > 0 && ran.every((s) => s!.pass) && goldenOk;
  verdict.finishedAt = new Date().toISOString();
  // Everything above ran in this process: its high-water mark is the run's memory cost (the report is written after).
  verdict.environment.peakRssBytes = process.resourceUsage().maxRSS * 1024;

  return { verdict, curve, referenceCurve };
}

/**
 * The model comes from config.json; a folder without one (a Megatron fixture) takes it from the
 * `args` inside the checkpoint given with --weights, or inside its first listed variant.
 */
function modelForSuite(suite: Suite, weightsOverride?: string): Model {
  if (suite.files.config) return modelFromConfig(suite.files.config);
  const source = weightsOverride ?? readVariants(suite).map((v) => join(suite.dir, v.dir))[0];
  if (!source) throw new InputError('suite has no config.json and no Megatron checkpoint to read a configuration from', { file: suite.dir, expected: 'config.json, --weights <Megatron dir>, or variants.json' });
  const ckpt = openCheckpoint(source);
  if (ckpt.format !== 'megatron') throw new InputError('without config.json only a Megatron checkpoint says what model it is', { file: source, expected: 'a Megatron checkpoint folder', actual: ckpt.format });
  return modelFromMegatron(ckpt);
}

/**
 * The ONNX files of a live reference, or undefined for the stored one. An explicit file list is
 * taken as given, else relative to the suite folder. The live reference runs the export's own
 * weights, so our model loads the same file unless --weights says otherwise.
 */
function onnxReferenceFiles(suite: Suite, reference: string | undefined): string[] | undefined {
  if (reference === 'stored') return undefined;
  if (reference === undefined) return suite.files.forwardInitial ? undefined : suite.files.onnx;
  if (reference === 'onnx') {
    if (!suite.files.onnx) throw new InputError('suite has no ONNX export', { file: suite.dir, expected: 'model.onnx, or encoder.onnx and decoder.onnx', actual: 'none' });
    return suite.files.onnx;
  }
  return reference.split(',').map((f) => {
    const path = f.trim();
    if (existsSync(path) || isAbsolute(path)) return path;
    const inSuite = join(suite.dir, path);
    return existsSync(inSuite) ? inSuite : path;
  });
}

/**
 * Initial (and final) weights against their references; with --weights, that checkpoint stands in
 * for the initial weights. A Megatron suite also checks every checkpoint variant it lists.
 */
function forwardRuns(suite: Suite, weightsOverride?: string): ForwardRun[] {
  const runs: ForwardRun[] = [];
  const initialRef = requireFile(suite, 'forwardInitial', 'reference forward (forward_initial.safetensors)');
  if (weightsOverride || suite.files.weights) {
    runs.push({ label: 'initial', weightsPath: weightsOverride ?? requireFile(suite, 'weights', 'initial weights'), referencePath: initialRef, reference64Path: suite.files.forwardInitial64 });
  }
  if (suite.files.finalWeights && suite.files.forwardFinal) {
    runs.push({ label: 'final', weightsPath: suite.files.finalWeights, referencePath: suite.files.forwardFinal, reference64Path: suite.files.forwardFinal64 });
  }
  if (!weightsOverride) {
    for (const v of readVariants(suite)) runs.push({ label: v.dir, weightsPath: join(suite.dir, v.dir), referencePath: join(suite.dir, v.reference) });
  }
  if (runs.length === 0) throw new InputError('suite has no weights to check', { file: suite.dir, expected: 'model.safetensors (or another checkpoint), or variants.json' });
  return runs;
}

function generationRuns(suite: Suite, weightsOverride?: string): GenerationRun[] {
  const f = suite.files;
  const forward = (reference?: string, reference64?: string) => (reference && reference64 ? { forward: { reference, reference64 } } : {});
  const runs: GenerationRun[] = [{ label: 'initial', weightsPath: weightsOverride ?? requireFile(suite, 'weights', 'initial weights'), ...forward(f.forwardInitial, f.forwardInitial64) }];
  if (f.finalWeights) runs.push({ label: 'final', weightsPath: f.finalWeights, ...forward(f.forwardFinal, f.forwardFinal64) });
  return runs;
}

/** 2026-11-30T11-22-33-123Z: sortable, and legal in file names everywhere. */
export function timestamp(d: Date): string {
  return d.toISOString().replace(/:/g, '-').replace('.', '-');
}
