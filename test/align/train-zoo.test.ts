/**
 * The training replay of LLaMA, RoBERTa and ViT on short runs: early steps agree with the
 * reference curves far inside the 1000-step tolerance (the fixtures measure their own float32 vs
 * float64 gap at ~1e-6 there), and no run leaks tensors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { curveFromRecords, readCurve } from '../../src/align/curve.ts';
import { loadParams } from '../../src/align/load-model.ts';
import { BatchSource } from '../../src/align/train/batches.ts';
import { parseHyperparams } from '../../src/align/train/hyperparams.ts';
import { train } from '../../src/align/train/loop.ts';
import { modelFromConfig, weightMapFor } from '../../src/families/registry.ts';
import { readJsonObject } from '../../src/json-file.ts';
import { BASELINES, useBackend } from '../support/backend.ts';

beforeAll(useBackend);

const maxDiff = (a: number[], b: number[], n: number) => Math.max(...a.slice(0, n).map((v, i) => Math.abs(v - b[i])));

describe.each([
  ['llama', 30],
  ['roberta', 30],
  ['vit', 60],
])('%s replay', (suite, steps) => {
  const f = (n: string) => `${BASELINES}${suite}/${n}`;
  let r: { curve: ReturnType<typeof curveFromRecords>; reference: ReturnType<typeof readCurve>; counts: number[]; stopped: boolean };
  beforeAll(async () => {
    const model = modelFromConfig(f('config.json'));
    const spec = parseHyperparams(readJsonObject(f('hyperparams.json')), f('hyperparams.json'), model.specs, weightMapFor(model));
    const { params } = loadParams(model, f('model.safetensors'));
    const counts: number[] = [];
    const result = await train(model, params, BatchSource.open(f('batches.safetensors'), model.inputNames), spec, { steps, onStep: () => counts.push(tf.memory().numTensors) });
    params.dispose();
    r = { curve: curveFromRecords(result.records), reference: readCurve(f('train_curve.json')), counts, stopped: result.stoppedAt !== undefined };
  });

  it(`loss within 1e-5 and the pre-clip gradient norm within 1e-4 relative at each of ${steps} steps`, () => {
    expect(r.stopped).toBe(false);
    expect(r.curve.steps.length).toBe(steps);
    expect(maxDiff(r.curve.metrics.loss, r.reference.metrics.loss, steps)).toBeLessThan(1e-5);
    r.curve.metrics.grad_norm.forEach((g, i) => expect(Math.abs(g - r.reference.metrics.grad_norm[i]) / r.reference.metrics.grad_norm[i], `step ${i}`).toBeLessThan(1e-4));
    expect(maxDiff(r.curve.metrics.lr, r.reference.metrics.lr, steps)).toBeLessThanOrEqual(1e-12);
  });

  it('keeps the number of live tensors constant across steps', () => {
    expect(new Set(r.counts).size).toBe(1);
  });
});
