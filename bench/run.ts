/**
 * npm run bench [-- --suites bert,gpt2 --steps 60 --out FILE --readers]
 * Measures, per shipped suite on the selected backend: ms per training step (median over the
 * steps after a warm-up) and forward ms on the eval batch (median of repeats). With --readers,
 * also runs the checkpoint reader benchmarks (~1 GB files). Prints JSON; --out writes it too.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/select.ts';
import { tf } from '../src/backend/tf.ts';
import { readIntTensors, toBatch, disposeBatch } from '../src/align/batch-io.ts';
import { loadParams, modelFromConfig, weightMapFor } from '../src/align/load-model.ts';
import { loadSuite, requireFile } from '../src/align/suite.ts';
import { BatchSource } from '../src/align/train/batches.ts';
import { parseHyperparams } from '../src/align/train/hyperparams.ts';
import { train } from '../src/align/train/loop.ts';
import { readJsonObject } from '../src/models/hf-config.ts';
import { readSafetensors } from '../src/weightmap/readers/safetensors.ts';

const { values } = parseArgs({
  options: {
    suites: { type: 'string', default: 'bert,megatron-bert,gpt2,t5,t5v11' },
    steps: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    backend: { type: 'string' },
    out: { type: 'string', default: 'reports/bench.json' },
    readers: { type: 'boolean', default: false },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const backend = await selectBackend(values.backend);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const suites: Record<string, unknown> = {};

for (const name of values.suites.split(',')) {
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

  const inputs = readIntTensors(readSafetensors(requireFile(suite, 'evalInputs', 'eval inputs')));
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

  const hyper = requireFile(suite, 'hyperparams', 'hyperparams.json');
  const spec = parseHyperparams(readJsonObject(hyper), hyper, model.specs, weightMapFor(model));
  const stamps: number[] = [];
  await train(model, params, BatchSource.open(requireFile(suite, 'batches', 'batches'), model.inputNames), spec, { steps: warmup + steps, onStep: () => stamps.push(performance.now()) });
  params.dispose();
  const stepMs = stamps.slice(warmup).map((t, i) => t - stamps[warmup + i - 1]);
  suites[name] = {
    msPerStepMedian: median(stepMs),
    msPerStepMean: stepMs.reduce((a, b) => a + b, 0) / stepMs.length,
    forwardMsMedian: median(forwardMs),
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
  method: `median wall time per optimizer step (forward + backward on ${backend.name}, clipping and AdamW on the host) over ${steps} steps after ${warmup} warm-up steps; forward: median of 10 eval-batch forwards after 5 warm-ups`,
  suites,
  readers,
};
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
