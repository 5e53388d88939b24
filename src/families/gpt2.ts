/**
 * GPT-2 (HF GPT2LMHeadModel), and Megatron-LM's GPT, which is the same model with a padded
 * vocabulary (HF's converter writes it as GPT-2).
 */
import { InputError } from '../errors.ts';
import type { JsonObject } from '../json-file.ts';
import { FLOAT32_MIN } from '../layers/masks.ts';
import { gpt2Model, type Gpt2Config } from '../models/gpt2.ts';
import { hfGpt2Map, hfGpt2UntiedMap } from '../weightmap/maps/hf-gpt2.ts';
import { megatronGptMap } from '../weightmap/maps/megatron.ts';
import { family } from './family.ts';
import { ConfigReader } from './hf-config.ts';
import type { MegatronArgs } from './megatron-args.ts';

function configFromHf(json: JsonObject, file: string): Gpt2Config {
  const c = new ConfigReader(json, file);
  c.oneOf('model_type', ['gpt2'] as const);
  const hidden = c.positive('n_embd', 768);
  if (c.has('scale_attn_by_inverse_layer_idx') && c.bool('scale_attn_by_inverse_layer_idx')) {
    throw new InputError('scale_attn_by_inverse_layer_idx is not supported', { file, tensor: 'scale_attn_by_inverse_layer_idx', expected: 'false', actual: 'true' });
  }
  const config: Gpt2Config = {
    vocabSize: c.positive('vocab_size', 50257),
    hidden,
    layers: c.int('n_layer', 12),
    heads: c.positive('n_head', 12),
    inner: c.has('n_inner') ? c.positive('n_inner') : 4 * hidden,
    maxPositions: c.positive('n_positions', 1024),
    layerNormEps: c.float('layer_norm_epsilon', 1e-5),
    activation: c.activation('activation_function', 'gelu_new'),
    scaleScores: c.bool('scale_attn_weights', true),
    maskFill: FLOAT32_MIN,
    tied: c.bool('tie_word_embeddings', true),
  };
  c.requireDivisible('n_embd', hidden, config.heads, 'n_head');
  return config;
}

function configFromArgs(args: MegatronArgs): Gpt2Config {
  const m = args.common();
  return { vocabSize: m.vocabSize, hidden: m.hidden, layers: m.layers, heads: m.heads, maxPositions: m.maxPositions, inner: m.ffn, layerNormEps: m.eps, activation: m.activation, scaleScores: true, maskFill: FLOAT32_MIN, tied: true };
}

export const gpt2 = family<Gpt2Config>({
  name: 'gpt2',
  arch: 'gpt2',
  modelTypes: ['gpt2'],
  configFromHf,
  build: gpt2Model,
  hfMap: (c) => (c.tied ? hfGpt2Map : hfGpt2UntiedMap),
  megatron: { arch: 'gpt', map: megatronGptMap, configFromArgs, folderFamily: 'megatron-gpt2' },
  megatronLosses: { 'lm loss': 'loss' },
});
