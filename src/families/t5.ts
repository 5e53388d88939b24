/**
 * T5 (HF T5ForConditionalGeneration) v1.0 (ReLU, tied head) and v1.1 (gated GELU, untied head):
 * one code path, switched by `feed_forward_proj` and `tie_word_embeddings`.
 */
import { InputError } from '../errors.ts';
import type { JsonObject } from '../json-file.ts';
import { ACTIVATIONS, type Activation } from '../layers/activations.ts';
import { FLOAT32_MIN } from '../layers/masks.ts';
import { t5Model, type T5Config } from '../models/t5.ts';
import { hfT5TiedMap, hfT5UntiedMap } from '../weightmap/maps/hf-t5.ts';
import { defaultHfExportOptions, family } from './family.ts';
import { ConfigReader } from './hf-config.ts';

function configFromHf(json: JsonObject, file: string): T5Config {
  const c = new ConfigReader(json, file);
  c.oneOf('model_type', ['t5'] as const);
  const proj = c.string('feed_forward_proj', 'relu');
  const parts = proj.split('-');
  const gated = parts[0] === 'gated';
  if (parts.length > 2 || (parts.length === 2 && !gated)) {
    throw new InputError('feed_forward_proj must be ACT or gated-ACT', { file, tensor: 'feed_forward_proj', actual: proj });
  }
  // HF 4.30 special-cases "gated-gelu" to the tanh GELU for backwards compatibility.
  const actName = proj === 'gated-gelu' ? 'gelu_new' : parts[parts.length - 1];
  if (!(ACTIVATIONS as readonly string[]).includes(actName)) {
    throw new InputError('unsupported activation in feed_forward_proj', { file, tensor: 'feed_forward_proj', expected: ACTIVATIONS.join(' | '), actual: proj });
  }
  const activation = actName as Activation;
  const encoderLayers = c.int('num_layers', 6);
  return {
    vocabSize: c.positive('vocab_size', 32128),
    dModel: c.positive('d_model', 512),
    dKv: c.positive('d_kv', 64),
    dFf: c.positive('d_ff', 2048),
    heads: c.positive('num_heads', 8),
    encoderLayers,
    decoderLayers: c.has('num_decoder_layers') ? c.int('num_decoder_layers') : encoderLayers,
    buckets: c.positive('relative_attention_num_buckets', 32),
    maxDistance: c.positive('relative_attention_max_distance', 128),
    eps: c.float('layer_norm_epsilon', 1e-6),
    activation,
    gated,
    tied: c.bool('tie_word_embeddings', true),
    decoderStartTokenId: c.int('decoder_start_token_id', 0),
    padTokenId: c.int('pad_token_id', 0),
    maskFill: FLOAT32_MIN,
  };
}

export const t5 = family<T5Config>({
  name: 't5',
  arch: 't5',
  modelTypes: ['t5'],
  // Only T5 configs carry feed_forward_proj; a hand-written one may omit model_type.
  recognises: (json) => json.model_type === undefined && typeof json.feed_forward_proj === 'string',
  configFromHf,
  build: t5Model,
  hfMap: (c) => (c.tied ? hfT5TiedMap : hfT5UntiedMap),
  // v1.1's gated MLP is saved as wi_0/wi_1; the map also reads v1.0's `wi` into the same
  // parameter, so the gated spelling must win when the model is gated.
  hfExportOptions: (c, map) => ({
    ...defaultHfExportOptions(map),
    ...(c.gated ? { prefer: map.rules.map((r) => r.from).filter((from) => /\.DenseReluDense\.wi_[01]\.weight$/.test(from)) } : {}),
  }),
  megatronLosses: { 'lm loss': 'loss' },
});
