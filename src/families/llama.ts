/**
 * LLaMA (HF LlamaForCausalLM, transformers 4.33): grouped-query attention, rotary positions with
 * θ = rope_theta, RMS norm, SwiGLU, no biases, untied head by default. Options HF added for later
 * LLaMA-style models that this model does not implement are refused by name (exit 2), never
 * ignored: rope_scaling, attention_bias, mlp_bias, sliding_window, pretraining_tp > 1, a
 * head_dim other than hidden_size / num_attention_heads.
 */
import { InputError } from '../errors.ts';
import type { JsonObject } from '../json-file.ts';
import { FLOAT32_MIN } from '../layers/masks.ts';
import { llamaModel, type LlamaConfig } from '../models/llama.ts';
import { hfLlamaMap, hfLlamaTiedMap } from '../weightmap/maps/hf-llama.ts';
import { family } from './family.ts';
import { ConfigReader } from './hf-config.ts';

function configFromHf(json: JsonObject, file: string): LlamaConfig {
  const c = new ConfigReader(json, file);
  c.oneOf('model_type', ['llama'] as const);
  c.unsupported('rope_scaling', null, 'is not supported (only plain rotary positions: rope_scaling null)');
  c.unsupported('attention_bias', false, 'is not supported (LLaMA projections have no bias)');
  c.unsupported('mlp_bias', false, 'is not supported (LLaMA projections have no bias)');
  c.unsupported('sliding_window', null, 'is not supported (attention over every earlier position only)');
  // pretraining_tp > 1 slices every projection into that many matmuls: the same function, summed in another order.
  c.unsupported('pretraining_tp', 1, 'other than 1 is not supported (sliced projections)');
  const hidden = c.positive('hidden_size', 4096);
  const heads = c.positive('num_attention_heads', 32);
  const kvHeads = c.has('num_key_value_heads') ? c.positive('num_key_value_heads') : heads;
  c.requireDivisible('hidden_size', hidden, heads, 'num_attention_heads');
  c.requireDivisible('num_attention_heads', heads, kvHeads, 'num_key_value_heads');
  const headDim = hidden / heads;
  c.unsupported('head_dim', headDim, 'other than hidden_size / num_attention_heads is not supported');
  if (headDim % 2 !== 0) throw new InputError('rotary positions need an even head dimension (hidden_size / num_attention_heads)', { file, tensor: 'hidden_size', actual: String(headDim) });
  return {
    vocabSize: c.positive('vocab_size', 32000),
    hidden,
    layers: c.int('num_hidden_layers', 32),
    heads,
    kvHeads,
    headDim,
    intermediate: c.positive('intermediate_size', 11008),
    maxPositions: c.positive('max_position_embeddings', 2048),
    rmsNormEps: c.float('rms_norm_eps', 1e-6),
    ropeTheta: c.float('rope_theta', 10000),
    activation: c.activation('hidden_act', 'silu'),
    tied: c.bool('tie_word_embeddings', false),
    maskFill: FLOAT32_MIN,
  };
}

export const llama = family<LlamaConfig>({
  name: 'llama',
  arch: 'llama',
  modelTypes: ['llama'],
  configFromHf,
  build: llamaModel,
  hfMap: (c) => (c.tied ? hfLlamaTiedMap : hfLlamaMap),
  megatronLosses: { 'lm loss': 'loss' },
});
