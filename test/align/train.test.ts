/**
 * The training replay on short runs: early steps must agree with HuggingFace's and Megatron's
 * curves far inside the 1000-step tolerance (~1e-6, per the fixtures' own measurements), a run
 * must be bit-reproducible, leak no tensors, and stop on a non-finite loss naming the step.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { readCurve, curveFromRecords } from '../../src/align/curve.ts';
import { loadParams } from '../../src/align/load-model.ts';
import { modelFromConfig, weightMapFor } from '../../src/families/registry.ts';
import { BatchSource } from '../../src/align/train/batches.ts';
import { parseHyperparams } from '../../src/align/train/hyperparams.ts';
import { train } from '../../src/align/train/loop.ts';
import { readJsonObject } from '../../src/json-file.ts';
import { BASELINES, useBackend } from '../support/backend.ts';

beforeAll(useBackend);

function setup(suite: string, weights: string) {
  const f = (n: string) => `${BASELINES}${suite}/${n}`;
  const model = modelFromConfig(f('config.json'));
  const spec = parseHyperparams(readJsonObject(f('hyperparams.json')), f('hyperparams.json'), model.specs, weightMapFor(model));
  const batches = BatchSource.open(f('batches.safetensors'), model.inputNames);
  return { model, spec, batches, reference: readCurve(f('train_curve.json')), params: () => loadParams(model, f(weights)).params };
}

async function run(suite: string, weights: string, steps: number) {
  const s = setup(suite, weights);
  const params = s.params();
  const counts: number[] = [];
  const result = await train(s.model, params, s.batches, s.spec, { steps, onStep: () => counts.push(tf.memory().numTensors) });
  params.dispose();
  return { ...s, result, curve: curveFromRecords(result.records), counts };
}

const maxDiff = (a: number[], b: number[], n: number) => Math.max(...a.slice(0, n).map((v, i) => Math.abs(v - b[i])));

describe('HF BERT replay (torch AdamW, warmup-cosine, clip_grad_norm_)', () => {
  const STEPS = 40;
  let r: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    r = await run('bert', 'model.safetensors', STEPS);
  });

  it('loss and its parts agree with the reference within 1e-5 at every early step', () => {
    expect(r.result.records.length).toBe(STEPS);
    for (const m of ['loss', 'mlm_loss', 'nsp_loss']) expect(maxDiff(r.curve.metrics[m], r.reference.metrics[m], STEPS), m).toBeLessThan(1e-5);
  });

  it('the pre-clip gradient norm agrees to 1e-5 relative, the lr to 1e-9 relative', () => {
    r.curve.metrics.grad_norm.forEach((g, i) => expect(Math.abs(g - r.reference.metrics.grad_norm[i]) / r.reference.metrics.grad_norm[i]).toBeLessThan(1e-5));
    r.curve.metrics.lr.forEach((lr, i) => expect(Math.abs(lr - r.reference.metrics.lr[i])).toBeLessThanOrEqual(1e-9 * Math.abs(r.reference.metrics.lr[i])));
  });

  it('keeps the number of live tensors constant across steps', () => {
    expect(new Set(r.counts).size).toBe(1);
  });

  it('two runs on one backend give bit-identical curves', async () => {
    const again = await run('bert', 'model.safetensors', 15);
    for (const [m, values] of Object.entries(again.curve.metrics)) {
      values.forEach((v, i) => expect(Object.is(v, r.curve.metrics[m][i]), `${m} step ${i}`).toBe(true));
    }
  });
});

describe('Megatron BERT replay (apex AdamW, sample-based schedule, Megatron clipping)', () => {
  it('agrees with the Megatron-semantics curve at every early step', async () => {
    const STEPS = 30;
    const r = await run('megatron-bert', 'hf_padded_vpad1024.safetensors', STEPS);
    for (const m of ['loss', 'lm_loss', 'binary_loss']) expect(maxDiff(r.curve.metrics[m], r.reference.metrics[m], STEPS), m).toBeLessThan(1e-5);
    expect(maxDiff(r.curve.metrics.lr, r.reference.metrics.lr, STEPS)).toBeLessThan(1e-15);
    r.curve.metrics.grad_norm.forEach((g, i) => expect(Math.abs(g - r.reference.metrics.grad_norm[i]) / r.reference.metrics.grad_norm[i]).toBeLessThan(1e-5));
    // 6144 structural zeros (unused position rows) plus a handful of rounding-dependent ones.
    r.curve.metrics.num_zeros.forEach((z) => expect(z).toBeGreaterThanOrEqual(6144));
  });
});

describe('non-finite values', () => {
  it('a NaN weight stops the run at step 0, naming what went wrong', async () => {
    const s = setup('bert', 'model.safetensors');
    const params = s.params();
    const v = params.variable('layers.0.attn.q.weight');
    v.assign(tf.fill(v.shape, Number.NaN));
    const result = await train(s.model, params, s.batches, s.spec, { steps: 5 });
    params.dispose();
    expect(result.stoppedAt?.step).toBe(0);
    expect(result.stoppedAt?.reason).toMatch(/loss is NaN/);
    expect(result.records).toHaveLength(0);
  });
});
