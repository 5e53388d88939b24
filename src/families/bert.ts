/**
 * BERT (HF BertForPreTraining: post-LN, MLM head tied to the word embeddings, NSP head). Its
 * pre-LN sibling, Megatron BERT, is megatron-bert.ts; both parse the same HF config keys.
 */
import { InputError } from '../errors.ts';
import type { JsonObject } from '../json-file.ts';
import { HF_IGNORE_INDEX } from '../layers/losses.ts';
import { FLOAT32_MIN } from '../layers/masks.ts';
import { bertModel, type BertConfig } from '../models/bert.ts';
import { hfBertMap } from '../weightmap/maps/hf-bert.ts';
import { family } from './family.ts';
import { ConfigReader } from './hf-config.ts';

/** The encoder's sizes as BertConfig and RobertaConfig both spell them, with HF's class defaults (the vocabulary's differs). */
export function bertEncoderSizes(c: ConfigReader, vocabDefault: number) {
  return {
    vocabSize: c.positive('vocab_size', vocabDefault),
    hidden: c.positive('hidden_size', 768),
    layers: c.int('num_hidden_layers', 12),
    heads: c.positive('num_attention_heads', 12),
    intermediate: c.positive('intermediate_size', 3072),
    maxPositions: c.positive('max_position_embeddings', 512),
    typeVocabSize: c.positive('type_vocab_size', 2),
    layerNormEps: c.float('layer_norm_eps', 1e-12),
    hiddenAct: c.activation('hidden_act', 'gelu'),
  };
}

/** The keys BertConfig and MegatronBertConfig share, with HF's class defaults. */
export function bertLikeConfig(json: JsonObject, file: string, modelType: string): Omit<BertConfig, 'placement' | 'lossNames' | 'nspIgnoreIndex'> {
  const c = new ConfigReader(json, file);
  c.oneOf('model_type', [modelType]);
  c.oneOf('position_embedding_type', ['absolute'] as const, 'absolute');
  const config = {
    ...bertEncoderSizes(c, 30522),
    // HF 4.30.2 masks with finfo.min for both classes; the Megatron-vs-HF difference is confined to padded rows.
    maskFill: FLOAT32_MIN,
  };
  c.requireDivisible('hidden_size', config.hidden, config.heads, 'num_attention_heads');
  if (!c.bool('tie_word_embeddings', true)) {
    throw new InputError('untied BERT decoders are not supported', { file, tensor: 'tie_word_embeddings', expected: 'true', actual: 'false' });
  }
  return config;
}

export const BERT_LOSSES = { mlm: 'mlm_loss', nsp: 'nsp_loss' } as const;

export const bert = family<BertConfig>({
  name: 'bert',
  arch: 'bert',
  modelTypes: ['bert'],
  configFromHf: (json, file) => ({ ...bertLikeConfig(json, file, 'bert'), placement: 'post', lossNames: BERT_LOSSES, nspIgnoreIndex: HF_IGNORE_INDEX }),
  build: bertModel,
  hfMap: () => hfBertMap,
  megatronLosses: { 'lm loss': BERT_LOSSES.mlm, 'sop loss': BERT_LOSSES.nsp },
});
