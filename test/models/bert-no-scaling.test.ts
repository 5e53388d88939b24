/** Attention without the 1/√d_head scale must be caught by the forward check. */
import { beforeAll, expect, it, vi } from 'vitest';
import { checkForward } from '../../src/align/forward-check.ts';
import { modelFromConfig } from '../../src/families/registry.ts';
import { BASELINES, useBackend } from '../support/backend.ts';

vi.mock('../../src/layers/attention.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/layers/attention.ts')>();
  const unscaled: typeof real.selfAttention = (x, p, opts, past) => real.selfAttention(x, p, { ...opts, scaleScores: false }, past);
  return { ...real, selfAttention: unscaled };
});

beforeAll(useBackend);

it('BERT with unscaled attention scores fails at the first layer', async () => {
  const f = (n: string) => `${BASELINES}bert/${n}`;
  const v = await checkForward(modelFromConfig(f('config.json')), f('eval_inputs.safetensors'), [
    { label: 'initial', weightsPath: f('model.safetensors'), referencePath: f('forward_initial.safetensors') },
  ], { atol: 1e-5, rtol: 0 });
  expect(v.pass).toBe(false);
  // The stored tensors' finest checkpoint: layer 0's attention map, before its output.
  expect(v.firstDivergence).toBe('initial/layer.0/attn.probs');
  expect(v.tensors.find((t) => t.name === 'initial/attentions.0')?.pass).toBe(false);
});
