/**
 * LLaMA, RoBERTa and ViT from the shared layers against HuggingFace 4.33.2's outputs in
 * baselines/: every forward tensor on initial and final weights; LLaMA's greedy generation with
 * and without the key/value cache, a cache that holds only the key/value heads, and a cached
 * pass that matches the full one at other key/value-head ratios; float16 pixels read exactly.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/backend/tf.ts';
import { loadManifest } from '../../src/align/baseline/manifest.ts';
import { readInputs } from '../../src/align/batch-io.ts';
import { checkForward } from '../../src/align/forward-check.ts';
import { checkGeneration } from '../../src/align/generation-check.ts';
import { loadParams } from '../../src/align/load-model.ts';
import { BatchSource } from '../../src/align/train/batches.ts';
import { modelFromConfig, modelFromConfigJson } from '../../src/families/registry.ts';
import { readJsonObject } from '../../src/json-file.ts';
import type { KeyValue } from '../../src/layers/attention.ts';
import { ParamStore } from '../../src/models/params.ts';
import { readSafetensors } from '../../src/weightmap/readers/safetensors.ts';
import { BASELINES, useBackend } from '../support/backend.ts';
import { maxAbsDiff, rand, size } from '../support/ref64.ts';

beforeAll(useBackend);

const at = (suite: string) => (f: string) => `${BASELINES}${suite}/${f}`;

describe.each(['llama', 'roberta', 'vit'])('%s against HF', (suite) => {
  const f = at(suite);
  it('every forward tensor on initial and final weights is within 1e-5', async () => {
    const model = modelFromConfig(f('config.json'));
    const v = await checkForward(model, f('eval_inputs.safetensors'), [
      { label: 'initial', weightsPath: f('model.safetensors'), referencePath: f('forward_initial.safetensors') },
      { label: 'final', weightsPath: f('final_weights.safetensors'), referencePath: f('forward_final.safetensors') },
    ], loadManifest(`${BASELINES}${suite}`).tolerances.forward);
    expect(v.tensors.length).toBe(2 * readSafetensors(f('forward_initial.safetensors')).tensors.size);
    for (const t of v.tensors) expect(t.maxAbsDiff, t.name).toBeLessThanOrEqual(1e-5);
    expect(v.pass).toBe(true);
  });
});

describe('LLaMA generation', () => {
  const f = at('llama');

  it('greedy tokens equal the reference, cached ≡ uncached, step logits within 1e-5', async () => {
    const g = await checkGeneration(modelFromConfig(f('config.json')), f('generation.safetensors'), [
      { label: 'initial', weightsPath: f('model.safetensors') },
      { label: 'final', weightsPath: f('final_weights.safetensors') },
    ], { atol: 1e-5, rtol: 0 });
    expect(g.cachedEqualsUncached).toBe(true);
    expect(g.matchesReference).toBe(true);
    expect(g.cases).toHaveLength(4);
    expect(g.maxLogitDiff).toBeLessThanOrEqual(1e-5);
  });

  it('the cache holds rotated keys and values of the 2 key/value heads only ([B, 2, T, 16]), growing by one per step', () => {
    const model = modelFromConfig(f('config.json'));
    const { params } = loadParams(model, f('model.safetensors'));
    const g = model.generation!;
    if (g.kind !== 'decoder-only') throw new Error('LLaMA is decoder-only');
    let cache: KeyValue[] | undefined;
    const shapes: number[][] = [];
    for (let step = 0; step < 3; step++) {
      const t = step === 0 ? 5 : 1;
      const total = 5 + step;
      const r = g.step(params.get, {
        inputIds: tf.tensor2d(Array.from({ length: 2 * t }, (_, i) => 10 + i), [2, t], 'int32'),
        attentionMask: tf.ones([2, total], 'int32'),
        positionIds: tf.tensor2d(Array.from({ length: 2 * t }, (_, i) => total - t + (i % t)), [2, t], 'int32'),
      }, cache);
      cache = r.cache as KeyValue[];
      expect(cache).toHaveLength(2); // one per layer
      shapes.push(cache[0].k.shape, cache[1].v.shape);
    }
    expect(shapes).toEqual([[2, 2, 5, 16], [2, 2, 5, 16], [2, 2, 6, 16], [2, 2, 6, 16], [2, 2, 7, 16], [2, 2, 7, 16]]);
    params.dispose();
  });

  it.each([
    [4, 4],
    [6, 3],
    [4, 1],
  ])('%i heads over %i key/value heads: feeding one token at a time through the cache gives the full pass\'s logits', (heads, kvHeads) => {
    const hidden = 8 * heads;
    const model = modelFromConfigJson({ model_type: 'llama', vocab_size: 50, hidden_size: hidden, num_hidden_layers: 2, num_attention_heads: heads, num_key_value_heads: kvHeads, intermediate_size: 20, max_position_embeddings: 4 }, 'config.json');
    const values = new Map(model.specs.map((s, i) => [s.name, Float32Array.from(rand(size(s.shape), 700 + i, s.name.includes('norm') ? 0 : 0.2).map((v) => (s.name.includes('norm') ? 1 : v)))]));
    const params = new ParamStore(model.specs, values);
    const g = model.generation!;
    if (g.kind !== 'decoder-only') throw new Error('LLaMA is decoder-only');
    const T = 6; // longer than max_position_embeddings: the rotary table grows as HF's does
    const ids = [3, 14, 15, 9, 26, 5];
    const step = (from: number, to: number, cache?: KeyValue[]) => g.step(params.get, {
      inputIds: tf.tensor2d([ids.slice(from, to)], [1, to - from], 'int32'),
      attentionMask: tf.ones([1, to], 'int32'),
      positionIds: tf.tensor2d([Array.from({ length: to - from }, (_, i) => from + i)], [1, to - from], 'int32'),
    }, cache);
    const full = step(0, T).logits.dataSync();
    let cache: KeyValue[] | undefined;
    const stepwise: number[] = [];
    for (let t = 0; t < T; t++) {
      const r = step(t, t + 1, cache);
      cache = r.cache as KeyValue[];
      stepwise.push(...r.logits.dataSync());
    }
    expect(cache![0].k.shape).toEqual([1, kvHeads, T, 8]);
    expect(maxAbsDiff(stepwise, full)).toBeLessThan(1e-5);
    params.dispose();
  });
});

describe('ViT pixels', () => {
  it('float16 pixel_values (eval inputs and training batches) read as float32, every value k/128 − 1 exactly', () => {
    const evalPixels = readInputs(readSafetensors(at('vit')('eval_inputs.safetensors'))).pixel_values;
    const step7 = BatchSource.open(at('vit')('batches.safetensors'), ['pixel_values', 'labels']).at(7).pixel_values;
    for (const t of [evalPixels, step7]) {
      expect(t.dtype).toBe('float32');
      expect(t.data.every((v) => Number.isInteger((v + 1) * 128) && v >= -1 && v <= 127 / 128)).toBe(true);
    }
    expect(step7.shape).toEqual([8, 3, 16, 16]);
    expect(readJsonObject(at('vit')('config.json')).image_size).toBe(16);
  });
});
