/**
 * Injected faults, one per test, each named at its layer and sub-block by the walk against the live
 * ONNX reference, and as finely as the stored PyTorch tensors allow. Faults go in through test seams
 * only (a wrapped parameter lookup, one block's options, a tap that replaces a value with the faulty
 * computation); the references are untouched. Expected names come from where each fault was put.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { checkForward, type ForwardCheckOptions } from '../../../src/align/forward-check.ts';
import type { ForwardSeams } from '../../../src/align/forward-run.ts';
import { readInputs } from '../../../src/align/batch-io.ts';
import { modelFromConfig } from '../../../src/families/registry.ts';
import { tf, type Tensor } from '../../../src/backend/tf.ts';
import { causalMaskBias, FLOAT32_MIN, paddingMaskBias } from '../../../src/layers/masks.ts';
import { layerNorm } from '../../../src/layers/norm.ts';
import { bucketIds } from '../../../src/layers/relative-position.ts';
import type { ParamLookup } from '../../../src/models/params.ts';
import type { T5Config } from '../../../src/models/t5.ts';
import type { ForwardVerdict } from '../../../src/align/verdict.ts';
import { readSafetensors } from '../../../src/weightmap/readers/safetensors.ts';
import { BASELINES, useBackend } from '../../support/backend.ts';
import { onnxRun, storedRun } from '../../support/onnx-suites.ts';

beforeAll(useBackend);

const f = (suite: string, file: string) => `${BASELINES}${suite}/${file}`;
const TOL = { atol: 1e-5, rtol: 0 };

async function both(suite: string, seams: ForwardSeams): Promise<{ live: ForwardVerdict; stored: ForwardVerdict }> {
  const model = modelFromConfig(f(suite, 'config.json'));
  const options: ForwardCheckOptions = { seams };
  const live = await checkForward(model, f(suite, 'eval_inputs.safetensors'), [onnxRun(suite)], TOL, options);
  const stored = await checkForward(model, f(suite, 'eval_inputs.safetensors'), [storedRun(suite)], TOL, options);
  return { live, stored };
}

/** A seam that remembers the parameter lookup, for taps that recompute a value with it. */
function capturing(): { params: (P: ParamLookup) => ParamLookup; P: () => ParamLookup } {
  let lookup: ParamLookup | undefined;
  return { params: (P) => (lookup = P), P: () => lookup! };
}

const attentionMask = (suite: string) => readInputs(readSafetensors(f(suite, 'eval_inputs.safetensors'))).attention_mask;

describe('a fault is named at its layer and sub-block', () => {
  it('BERT: LayerNorm eps 1e-5 instead of 1e-12 in layer 1\'s output norm', async () => {
    const p = capturing();
    let residual: Tensor | undefined;
    const { live, stored } = await both('bert', {
      params: p.params,
      tap: (name, value) => {
        if (name === 'layer.1/mlp.residual') residual = value;
        if (name === 'layer.1/mlp_norm') return layerNorm(residual!, { weight: p.P()('layers.1.mlp_norm.weight'), bias: p.P()('layers.1.mlp_norm.bias') }, 1e-5);
      },
    });
    expect(live.firstDivergence).toBe('initial/layer.1/mlp_norm');
    expect(live.divergence).toMatchObject({ layer: 'layer.1', subBlock: 'mlp_norm', match: 'scope', lastPassing: 'initial/layer.1/mlp.residual', reference: 'hidden_states.2' });
    // The stored tensors hold layer outputs: the same name, bounded only by the layer's attention map.
    expect(stored.firstDivergence).toBe('initial/layer.1/mlp_norm');
    expect(stored.divergence!.lastPassing).toBe('initial/layer.1/attn.probs');
    expect([live.pass, stored.pass]).toEqual([false, false]);
  });

  it('BERT: attention scores not scaled by 1/√d in layer 0', async () => {
    const { live, stored } = await both('bert', { layerOptions: (layer, o) => (layer === 'layer.0' ? { ...o, scaleScores: false } : o) });
    expect(live.firstDivergence).toBe('initial/layer.0/attn.scores');
    // A scale error: large |diff|, but the scores stay collinear with the reference.
    expect(live.divergence!.maxAbsDiff).toBeGreaterThan(1e-2);
    expect(live.divergence!.cosine).toBeGreaterThan(0.9999);
    expect(stored.firstDivergence).toBe('initial/layer.0/attn.probs');
  });

  it('BERT: tanh GELU in place of the exact one in layer 1\'s MLP (below the stored tensors\' resolution)', async () => {
    const { live, stored } = await both('bert', { layerOptions: (layer, o) => (layer === 'layer.1' ? { ...o, activation: 'gelu_new' } : o) });
    expect(live.firstDivergence).toBe('initial/layer.1/mlp.act');
    expect(live.divergence).toMatchObject({ lastPassing: 'initial/layer.1/mlp.fc_in', match: 'scope' });
    expect(live.pass).toBe(false);
    // At initialisation the pre-activations are small: the layer output moves by < 1e-5, so the
    // stored forward cannot see it; the live reference reads the activation itself.
    expect(stored.pass).toBe(true);
    expect(stored.firstDivergence).toBeNull();
  });

  it('GPT-2: one square projection weight transposed (layer 1\'s attention output)', async () => {
    const { live, stored } = await both('gpt2', { params: (P) => (name) => (name === 'layers.1.attn.o.weight' ? tf.transpose(P(name)) : P(name)) });
    expect(live.firstDivergence).toBe('initial/layer.1/attn.out');
    expect(live.divergence!.lastPassing).toBe('initial/layer.1/attn.probs');
    // A permuted weight scrambles directions: the cosine collapses.
    expect(Math.abs(live.divergence!.cosine)).toBeLessThan(0.5);
    expect(stored.firstDivergence).toBe('initial/final_norm');
    expect(stored.divergence!.lastPassing).toBe('initial/layer.1/attn.probs');
  });

  it('GPT-2: causal mask off by one position (each query also sees the next key)', async () => {
    const mask = attentionMask('gpt2');
    const { live, stored } = await both('gpt2', {
      tap: (name, value) => {
        if (name !== 'attention_bias') return;
        const T = value.shape[3] as number;
        const padding = paddingMaskBias(tf.tensor(mask.data, mask.shape, 'int32'), FLOAT32_MIN);
        return tf.add(causalMaskBias(T, T, FLOAT32_MIN, 1), padding);
      },
    });
    expect(live.firstDivergence).toBe('initial/layer.0/attn.scores');
    expect(live.divergence!.lastPassing).toBe('initial/layer.0/attn_norm');
    expect(stored.firstDivergence).toBe('initial/layer.0/attn.probs');
  });

  it('T5: relative-position buckets off by one in the encoder', async () => {
    const mask = attentionMask('t5');
    const config = modelFromConfig(f('t5', 'config.json')).config as T5Config;
    const p = capturing();
    const { live, stored } = await both('t5', {
      params: p.params,
      tap: (name, value) => {
        if (name !== 'encoder/position_bias') return;
        const T = value.shape[3] as number;
        const spec = { buckets: config.buckets, maxDistance: config.maxDistance, bidirectional: true };
        const shifted = Int32Array.from(bucketIds(T, T, spec), (b) => Math.min(b + 1, config.buckets - 1));
        const table = p.P()('encoder.relative_bias'); // [buckets, nh]
        const bias = tf.gather(table, tf.tensor2d(shifted, [T, T], 'int32')).transpose([2, 0, 1]).expandDims(0); // [1,nh,T,T]
        return tf.add(bias, paddingMaskBias(tf.tensor(mask.data, mask.shape, 'int32'), FLOAT32_MIN));
      },
    });
    expect(live.firstDivergence).toBe('initial/encoder/position_bias');
    expect(live.divergence).toMatchObject({ layer: 'encoder', subBlock: 'position_bias', lastPassing: 'initial/encoder/embeddings' });
    expect(stored.firstDivergence).toBe('initial/encoder/layer.0/attn.probs');
  });
});
