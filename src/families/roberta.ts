/**
 * RoBERTa (HF RobertaForMaskedLM, transformers 4.33): BERT's post-LN encoder with positions that
 * start after padding_idx, and an MLM head tied to the word embeddings with its own bias.
 */
import { InputError } from '../errors.ts';
import type { JsonObject } from '../json-file.ts';
import { FLOAT32_MIN } from '../layers/masks.ts';
import { robertaModel, type RobertaConfig } from '../models/roberta.ts';
import { hfRobertaMap } from '../weightmap/maps/hf-roberta.ts';
import { bertEncoderSizes } from './bert.ts';
import { family } from './family.ts';
import { ConfigReader } from './hf-config.ts';

function configFromHf(json: JsonObject, file: string): RobertaConfig {
  const c = new ConfigReader(json, file);
  c.oneOf('model_type', ['roberta'] as const);
  c.oneOf('position_embedding_type', ['absolute'] as const, 'absolute');
  c.unsupported('is_decoder', false, 'is not supported (RobertaForMaskedLM is an encoder)');
  c.unsupported('add_cross_attention', false, 'is not supported (RobertaForMaskedLM is an encoder)');
  if (!c.bool('tie_word_embeddings', true)) {
    throw new InputError('untied RoBERTa decoders are not supported', { file, tensor: 'tie_word_embeddings', expected: 'true', actual: 'false' });
  }
  const config: RobertaConfig = {
    ...bertEncoderSizes(c, 50265),
    padTokenId: c.int('pad_token_id', 1),
    maskFill: FLOAT32_MIN,
  };
  c.requireDivisible('hidden_size', config.hidden, config.heads, 'num_attention_heads');
  if (config.padTokenId >= config.maxPositions || config.padTokenId >= config.vocabSize) {
    throw new InputError('pad_token_id must index the word and position tables (it is their padding_idx)', { file, tensor: 'pad_token_id', expected: `< ${Math.min(config.maxPositions, config.vocabSize)}`, actual: String(config.padTokenId) });
  }
  return config;
}

export const roberta = family<RobertaConfig>({
  name: 'roberta',
  arch: 'roberta',
  modelTypes: ['roberta'],
  configFromHf,
  build: robertaModel,
  hfMap: () => hfRobertaMap,
  megatronLosses: { 'lm loss': 'loss' },
});
