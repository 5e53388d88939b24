/**
 * npm run bench [-- --suites bert,gpt2 --steps 60 --out FILE --readers --forward-only]   (default: every suite with a config and batches)
 * Measures, per shipped suite on the selected backend: ms per training step (median over the
 * steps after a warm-up) and forward ms on the eval batch (median of repeats), ours with and
 * without taps, and, for suites with an ONNX export, onnxruntime's forward on the same batch
 * (the live reference's settings, and with every graph optimization for comparison). With
 * --readers, also runs the checkpoint reader benchmarks (~1 GB files). Prints JSON; --out writes it too.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/select.ts';
import { tf } from '../src/backend/tf.ts';
import { readInputs, toBatch, disposeBatch } from '../src/align/batch-io.ts';
import { loadParams } from '../src/align/load-model.ts';
import { modelFromConfig, weightMapFor } from '../src/families/registry.ts';
import { loadSuite, requireFile } from '../src/align/suite.ts';
import { BatchSource } from '../src/align/train/batches.ts';
import { parseHyperparams } from '../src/align/train/hyperparams.ts';
import { train } from '../src/align/train/loop.ts';
import { readJsonObject } from '../src/json-file.ts';
import { readSafetensors } from '../src/weightmap/readers/safetensors.ts';
import { forwardValues } from '../src/align/forward-run.ts';
import type { HostBatch } from '../src/align/batch-io.ts';
import { OnnxReference } from '../src/reference/onnx-reference.ts';
import { DEFAULT_ORT_SETTINGS, ortVersion, type OrtSettings } from '../src/reference/onnx-runtime.ts';

/** onnxruntime on the eval batch: session creation once, then the median of 10 runs after 5 warm-ups (graph outputs only). */
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

const { values } = parseArgs({
  options: {
    suites: { type: 'string' },
    steps: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    backend: { type: 'string' },
    out: { type: 'string', default: 'reports/bench.json' },
    readers: { type: 'boolean', default: false },
    'forward-only': { type: 'boolean', default: false },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const backend = await selectBackend(values.backend);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const suites: Record<string, unknown> = {};

// Default: every shipped suite that trains from an HF config (Megatron checkpoint folders have none).
const names = values.suites?.split(',') ?? readdirSync('baselines').filter((n) => existsSync(join('baselines', n, 'config.json')) && existsSync(join('baselines', n, 'batches.safetensors'))).sort();

for (const name of names) {
  const dir = join('baselines', name);
  if (!existsSync(join(dir, 'config.json'))) {
    suites[name] = { skipped: 'no config.json' };
    continue;
  }
  let model;
  try {
    model = modelFromConfig(join(dir, 'config.json'));
  } catch (error) {
    suites[name] = { skipped: error instanceof Error ? error.message : String(error) };
    continue;
  }
  const suite = loadSuite(dir);
  const weights = requireFile(suite, 'weights', 'initial weights');

  const inputs = readInputs(readSafetensors(requireFile(suite, 'evalInputs', 'eval inputs')));
  const { params } = loadParams(model, weights);
  const batch = toBatch(Object.fromEntries(Object.entries(inputs).filter(([k]) => model.inputNames.includes(k))));
  const forwardMs: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    const loss = tf.tidy(() => model.forward(params.get, batch, { taps: false }).loss);
    await loss.data();
    loss.dispose();
    if (i >= 5) forwardMs.push(performance.now() - t0);
  }
  disposeBatch(batch);
  const tappedMs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    await forwardValues(model, params.get, inputs, {}, true);
    if (i >= 3) tappedMs.push(performance.now() - t0);
  }
  const forward = { forwardMsMedian: median(forwardMs), forwardWithTapsToHostMsMedian: median(tappedMs) };
  const onnx = suite.files.onnx
    ? {
        files: suite.files.onnx.map((f) => f.split('/').pop()),
        reference: { ...(await benchOnnx(suite.files.onnx, inputs, DEFAULT_ORT_SETTINGS)), ...DEFAULT_ORT_SETTINGS },
        allOptimizations: { ...(await benchOnnx(suite.files.onnx, inputs, { ...DEFAULT_ORT_SETTINGS, optimization: 'all' })), threads: 1, optimization: 'all' },
      }
    : undefined;
  if (values['forward-only']) {
    params.dispose();
    suites[name] = { ...forward, ...(onnx ? { onnxruntime: onnx } : {}) };
    continue;
  }

  const hyper = requireFile(suite, 'hyperparams', 'hyperparams.json');
  const spec = parseHyperparams(readJsonObject(hyper), hyper, model.specs, weightMapFor(model));
  const stamps: number[] = [];
  await train(model, params, BatchSource.open(requireFile(suite, 'batches', 'batches'), model.inputNames), spec, { steps: warmup + steps, onStep: () => stamps.push(performance.now()) });
  params.dispose();
  const stepMs = stamps.slice(warmup).map((t, i) => t - stamps[warmup + i - 1]);
  suites[name] = {
    msPerStepMedian: median(stepMs),
    msPerStepMean: stepMs.reduce((a, b) => a + b, 0) / stepMs.length,
    ...forward,
    ...(onnx ? { onnxruntime: onnx } : {}),
    stepsTimed: stepMs.length,
    projected1000StepsSeconds: (median(stepMs) * 1000) / 1000,
  };
}

const readers: Record<string, unknown> = {};
if (values.readers) {
  for (const script of ['bench/readers-safetensors.ts', 'bench/readers-torch.ts']) {
    if (!existsSync(script)) continue;
    const out = execFileSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
    readers[script] = JSON.parse(out.trim().split('\n').pop() ?? '{}');
  }
}

const report = {
  when: new Date().toISOString(),
  backend: backend.name,
  ...(backend.adapter ? { adapter: backend.adapter } : {}),
  node: process.version,
  tfjs: tf.version.tfjs,
  onnxruntime: await ortVersion(),
  cpus: os.cpus().length,
  loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  method: `median wall time per optimizer step (forward + backward on ${backend.name}, clipping and AdamW on the host) over ${steps} steps after ${warmup} warm-up steps; forward: median of 10 eval-batch forwards after 5 warm-ups (to the loss, taps off); with taps: median of 5 after 3, every output and tap read to the host; onnxruntime: CPU provider, 1 intra-op thread, sequential, median of 10 runs after 5 (graph outputs only; openAndFirstRunMs includes parsing and session creation)`,
  suites,
  readers,
};
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
