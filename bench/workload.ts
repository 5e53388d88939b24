/**
 * One benchmark workload in its own process, so that its peak RSS (process.resourceUsage().maxRSS)
 * is its own: bench/run.ts starts one per suite, per size preset and for the matmul peak, and
 * reads the JSON line this prints last.
 *
 *   node --import tsx bench/workload.ts '{"kind":"suite","name":"bert","steps":60,"warmup":10}'
 *   node --import tsx bench/workload.ts '{"kind":"size","preset":"gpt2","rows":2,"seq":128,"steps":3,"warmup":1}'
 *   node --import tsx bench/workload.ts '{"kind":"matmul","n":1024}'
 *
 * FLOP counts are the usual transformer estimate, not a count of executed ops: a forward is
 * 2 FLOPs per weight per token for every matrix the tokens pass through (embedding tables count as
 * the LM head only where the head is tied or present), plus 4·T·Tk·d per attention layer for
 * scores and context; a training step is 3× the forward.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../src/backend/select.ts';
import { tf } from '../src/backend/tf.ts';
import { disposeBatch, readInputs, toBatch, type HostBatch } from '../src/align/batch-io.ts';
import { forwardValues } from '../src/align/forward-run.ts';
import { loadParams } from '../src/align/load-model.ts';
import { loadSuite, requireFile } from '../src/align/suite.ts';
import { BatchSource } from '../src/align/train/batches.ts';
import { parseHyperparams, type TrainSpec } from '../src/align/train/hyperparams.ts';
import { train } from '../src/align/train/loop.ts';
import { mulberry32 } from '../src/align/baseline/calibrate.ts';
import { AdamW, clipGradients } from '../src/align/train/optimizer.ts';
import { describeEstimate, modelShape, planTraining, type ModelShape } from '../src/align/train/memory-plan.ts';
import { modelFromConfig, modelFromConfigJson, weightMapFor } from '../src/families/registry.ts';
import { readJsonObject, type JsonObject } from '../src/json-file.ts';
import type { Model } from '../src/models/model.ts';
import { ParamStore } from '../src/models/params.ts';
import { OnnxReference } from '../src/reference/onnx-reference.ts';
import { DEFAULT_ORT_SETTINGS, type OrtSettings } from '../src/reference/onnx-runtime.ts';
import { readSafetensors } from '../src/weightmap/readers/safetensors.ts';
import { writeSafetensors } from '../src/weightmap/readers/safetensors-writer.ts';

/** Real sizes as HF config.json files: HF's own defaults are bert-base-uncased and gpt2 (small); t5-base widens t5-small's. */
export const SIZE_PRESETS: Record<string, JsonObject> = {
  'bert-base': { model_type: 'bert', architectures: ['BertForPreTraining'] },
  gpt2: { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] },
  't5-base': { model_type: 't5', architectures: ['T5ForConditionalGeneration'], d_model: 768, d_ff: 3072, d_kv: 64, num_heads: 12, num_layers: 12, num_decoder_layers: 12 },
};

type Job =
  | { kind: 'suite'; name: string; steps: number; warmup: number; forwardOnly?: boolean; backend?: string }
  | { kind: 'size'; preset: string; rows: number; seq: number; steps: number; warmup: number; forwardOnly?: boolean; backend?: string }
  | { kind: 'matmul'; n: number; backend?: string };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Forward FLOPs per step (see the header). */
export function forwardFlops(model: Model, s: ModelShape): number {
  const tables = model.specs.filter((p) => /^(embeddings\.(word|position|token_type)|shared)$/.test(p.name) || /relative_bias$/.test(p.name));
  const tableParams = tables.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const matrixParams = s.params - tableParams;
  const head = s.classes * s.hidden; // the LM head's matmul, tied or not (an untied one is already in matrixParams)
  const untiedHead = model.specs.some((p) => p.name === 'lm_head' || p.name === 'lm_head.weight');
  const attention = 4 * s.tokens * s.keys * s.hidden * s.layers;
  return 2 * s.tokens * (matrixParams + (untiedHead ? 0 : head)) + attention;
}

async function timeForward(model: Model, lookup: ParamStore['get'], inputs: HostBatch, repeats: number, warmup: number): Promise<number> {
  const batch = toBatch(Object.fromEntries(Object.entries(inputs).filter(([k]) => model.inputNames.includes(k))));
  const times: number[] = [];
  try {
    for (let i = 0; i < warmup + repeats; i++) {
      const t0 = performance.now();
      const loss = tf.tidy(() => model.forward(lookup, batch, { taps: false }).loss);
      await loss.data();
      loss.dispose();
      if (i >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    disposeBatch(batch);
  }
  return median(times);
}

async function timeTraining(model: Model, params: ParamStore, batches: BatchSource, spec: TrainSpec, steps: number, warmup: number, recompute: boolean): Promise<number> {
  const stamps: number[] = [performance.now()];
  await train(model, params, batches, { ...spec, steps: warmup + steps }, { steps: warmup + steps, recompute, onStep: () => stamps.push(performance.now()) });
  const stepMs = stamps.slice(warmup + 1).map((t, i) => t - stamps[warmup + i]);
  return median(stepMs);
}

/**
 * Where a step's time goes: one forward + backward under tf.profile (kernels run, their summed time;
 * the rest of the wall time is tfjs dispatch and JS), and the host optimizer alone (clipping and
 * AdamW over every parameter, float32-exact), median of 5.
 */
async function stepProfile(model: Model, params: ParamStore, batch: HostBatch, spec: TrainSpec): Promise<Record<string, number>> {
  const device = toBatch(batch);
  const vars = params.variables();
  const t0 = performance.now();
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => model.forward(params.get, device, { taps: false }).loss as tf.Scalar, vars);
    return [value, ...Object.values(grads)];
  });
  const wallMs = performance.now() - t0;
  tf.dispose(info.result as tf.Tensor[]);
  disposeBatch(device);
  const kernelMs = info.kernels.reduce((n, k) => n + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0), 0);
  const states = params.specs.map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    return { name: p.name, value: new Float32Array(n).fill(0.01), m: new Float32Array(n), v: new Float32Array(n), decay: !spec.noDecay.has(p.name) };
  });
  const grads = states.map((st) => new Float32Array(st.value.length).fill(1e-3));
  const optimizer = new AdamW(spec.optimizer);
  const hostMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const h0 = performance.now();
    clipGradients(grads, 1, 'torch');
    optimizer.step(states, grads, 1e-4);
    hostMs.push(performance.now() - h0);
  }
  return { kernelsPerStep: info.kernels.length, kernelMs, forwardBackwardWallMs: wallMs, dispatchAndJsMs: wallMs - kernelMs, hostOptimizerMs: median(hostMs) };
}

async function benchOnnx(files: string[], inputs: HostBatch, settings: OrtSettings): Promise<Record<string, number>> {
  const t0 = performance.now();
  const reference = OnnxReference.open(files, settings);
  await reference.run(inputs);
  const firstRunMs = performance.now() - t0;
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    await reference.run(inputs);
    if (i >= 5) times.push(performance.now() - t);
  }
  await reference.release();
  return { forwardMsMedian: median(times), openAndFirstRunMs: firstRunMs };
}

/** Seeded random weights at the preset's shapes (norm weights 1, everything else ±0.02·√3 uniform), the same every run, uploaded one at a time. */
function randomParams(model: Model): ParamStore {
  const random = mulberry32(1234);
  return new ParamStore(model.specs, (put) => {
    for (const spec of model.specs) {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (/norm.*weight|norm$/.test(spec.name) && spec.shape.length === 1) data.fill(1);
      else for (let i = 0; i < n; i++) data[i] = (random() * 2 - 1) * 0.0346;
      put(spec.name, data);
    }
  });
}

/** Random token batches [steps, rows, seq] in the layout the suites use, written to a temp file. */
function randomBatches(model: Model, dir: string, steps: number, rows: number, seq: number, vocab: number): BatchSource {
  const random = mulberry32(99);
  const ids = (len: number) => Int32Array.from({ length: steps * rows * len }, () => 1 + Math.floor(random() * (vocab - 1)));
  const shape = [steps, rows, seq];
  const tensors = [
    { name: 'input_ids', dtype: 'I32' as const, shape, data: ids(seq) },
    { name: 'attention_mask', dtype: 'I32' as const, shape, data: new Int32Array(steps * rows * seq).fill(1) },
    { name: 'labels', dtype: 'I32' as const, shape, data: ids(seq) },
  ];
  if (model.inputNames.includes('token_type_ids')) tensors.push({ name: 'token_type_ids', dtype: 'I32', shape, data: new Int32Array(steps * rows * seq) });
  if (model.inputNames.includes('next_sentence_label')) tensors.push({ name: 'next_sentence_label', dtype: 'I32', shape: [steps, rows], data: new Int32Array(steps * rows) });
  const file = join(dir, 'batches.safetensors');
  writeSafetensors(file, tensors);
  return BatchSource.open(file, model.inputNames);
}

/** The shipped suites' recipe, for presets that have none: torch AdamW, clipping at 1, cosine after warm-up. */
function syntheticSpec(model: Model, steps: number): TrainSpec {
  return {
    steps,
    optimizer: { rule: 'torch-adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
    noDecay: new Set(model.specs.filter((s) => s.shape.length === 1).map((s) => s.name)),
    schedule: { maxLr: 1e-4, minLr: 1e-5, initLr: 0, warmupSamples: 1, decaySamples: steps, style: 'cosine', samplesPerStep: 1 },
    clip: { maxNorm: 1, rule: 'torch' },
    countZeros: false,
  };
}

async function runSuite(job: Extract<Job, { kind: 'suite' }>): Promise<Record<string, unknown>> {
  const dir = join('baselines', job.name);
  const model = modelFromConfig(join(dir, 'config.json'));
  const suite = loadSuite(dir);
  const inputs = readInputs(readSafetensors(requireFile(suite, 'evalInputs', 'eval inputs')));
  const { params } = loadParams(model, requireFile(suite, 'weights', 'initial weights'));
  const forwardMs = await timeForward(model, params.get, inputs, 10, 5);
  const tappedMs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    await forwardValues(model, params.get, inputs, {}, true);
    if (i >= 3) tappedMs.push(performance.now() - t0);
  }
  const onnx = suite.files.onnx
    ? {
        files: suite.files.onnx.map((f) => f.split('/').pop()),
        reference: { ...(await benchOnnx(suite.files.onnx, inputs, DEFAULT_ORT_SETTINGS)), ...DEFAULT_ORT_SETTINGS },
        allOptimizations: { ...(await benchOnnx(suite.files.onnx, inputs, { ...DEFAULT_ORT_SETTINGS, optimization: 'all' })), threads: 1, optimization: 'all' },
      }
    : undefined;
  const batches = BatchSource.open(requireFile(suite, 'batches', 'batches'), model.inputNames);
  const shape = modelShape(model, batches.at(0));
  const evalShape = modelShape(model, inputs);
  const out: Record<string, unknown> = {
    params: shape.params,
    forwardMsMedian: forwardMs,
    forwardGflops: forwardFlops(model, evalShape) / forwardMs / 1e6,
    forwardWithTapsToHostMsMedian: median(tappedMs),
    ...(onnx ? { onnxruntime: onnx } : {}),
  };
  if (!job.forwardOnly) {
    const hyper = requireFile(suite, 'hyperparams', 'hyperparams.json');
    const spec = parseHyperparams(readJsonObject(hyper), hyper, model.specs, weightMapFor(model));
    const msPerStep = await timeTraining(model, params, batches, spec, job.steps, job.warmup, false);
    // Profiled after the timed steps, warm: the first step also creates every XNNPACK operator.
    const profile = await stepProfile(model, params, batches.at(0), spec);
    Object.assign(out, { msPerStepMedian: msPerStep, trainGflops: (3 * forwardFlops(model, shape)) / msPerStep / 1e6, stepsTimed: job.steps, tokensPerStep: shape.tokens, stepProfile: profile });
  }
  params.dispose();
  return out;
}

async function runSize(job: Extract<Job, { kind: 'size' }>): Promise<Record<string, unknown>> {
  const preset = SIZE_PRESETS[job.preset];
  if (!preset) throw new Error(`unknown --size ${job.preset} (known: ${Object.keys(SIZE_PRESETS).join(', ')})`);
  const model = modelFromConfigJson(preset, `preset ${job.preset}`);
  const dir = mkdtempSync(join(tmpdir(), 'parity-bench-'));
  try {
    const vocab = model.specs.find((s) => s.name === 'embeddings.word' || s.name === 'shared')!.shape[0];
    const batches = randomBatches(model, dir, job.warmup + job.steps, job.rows, job.seq, vocab);
    const shape = modelShape(model, batches.at(0));
    const t0 = performance.now();
    const params = randomParams(model);
    const initMs = performance.now() - t0;
    const forwardMs = await timeForward(model, params.get, batches.at(0), 3, 1);
    const out: Record<string, unknown> = {
      config: preset, params: shape.params, rows: job.rows, seq: job.seq, tokensPerStep: shape.tokens,
      randomInitMs: initMs, forwardMsMedian: forwardMs, forwardGflops: forwardFlops(model, shape) / forwardMs / 1e6,
    };
    if (!job.forwardOnly) {
      const plan = planTraining(shape, tf.getBackend(), 'host', false, `preset ${job.preset}`);
      const msPerStep = await timeTraining(model, params, batches, syntheticSpec(model, job.warmup + job.steps), job.steps, job.warmup, plan.recompute);
      Object.assign(out, { msPerStepMedian: msPerStep, trainGflops: (3 * forwardFlops(model, shape)) / msPerStep / 1e6, stepsTimed: job.steps, memoryPlan: describeEstimate(plan), recompute: plan.recompute });
    }
    params.dispose();
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runMatmul(job: Extract<Job, { kind: 'matmul' }>): Promise<Record<string, unknown>> {
  const a = tf.randomNormal([job.n, job.n]);
  const b = tf.randomNormal([job.n, job.n]);
  const times: number[] = [];
  for (let i = 0; i < 13; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i >= 3) times.push(performance.now() - t0);
  }
  return { n: job.n, msMedian: median(times), gflops: (2 * job.n ** 3) / median(times) / 1e6 };
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const backend = await selectBackend(job.backend);
const result = job.kind === 'suite' ? await runSuite(job) : job.kind === 'size' ? await runSize(job) : await runMatmul(job);
const peakRssMB = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify({ backend: backend.name, ...result, peakRssMB: Math.round(peakRssMB) })}\n`);
