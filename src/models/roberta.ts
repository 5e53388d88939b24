/**
 * RobertaForMaskedLM (HF 4.33) from BERT's pieces: the same post-LN encoder and MLM head (decoder
 * tied to the word embeddings, its own bias), with RoBERTa's embeddings — positions counted from
 * padding_idx + 1 over real tokens only, pads at padding_idx — and no pooler or NSP head. The
 * head's activation is exact GELU whatever `hidden_act` says (RobertaLMHead calls `gelu`).
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { paddingAwarePositionIds } from '../layers/embedding.ts';
import { crossEntropy, HF_IGNORE_INDEX } from '../layers/losses.ts';
import { bertEncode, bertEncoderSpecs, mlmHeadSpecs, mlmLogits, requireInput, type BertEncoderConfig } from './bert.ts';
import type { Batch, ForwardOptions, ForwardResult, ModelBody } from './model.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

export interface RobertaConfig extends Omit<BertEncoderConfig, 'placement' | 'headAct'> {
  /** padding_idx of the word and position embeddings (HF pad_token_id). */
  padTokenId: number;
}

/** The BERT encoder and head settings RoBERTa uses. */
function encoder(c: RobertaConfig): BertEncoderConfig {
  return { ...c, placement: 'post', headAct: 'gelu' };
}

export function robertaParamSpecs(c: RobertaConfig): ParamSpec[] {
  return [...bertEncoderSpecs(encoder(c)), ...mlmHeadSpecs(encoder(c))];
}

/** batch: input_ids [B,T]; attention_mask [B,T]; token_type_ids [B,T] (default zeros); labels [B,T] (−100 = not masked). */
export function robertaForward(c: RobertaConfig, P: ParamLookup, batch: Batch, options: ForwardOptions): ForwardResult {
  const inputIds = requireInput(batch, 'input_ids');
  const [batchSize, time] = inputIds.shape as [number, number];
  const tokenTypes = batch.token_type_ids ?? tf.zeros([batchSize, time], 'int32');
  const mask = batch.attention_mask ?? tf.ones([batchSize, time], 'int32');
  // HF derives positions from the ids, not from the mask: a pad id inside a row sits at padding_idx too.
  // HF's embeddings give their padding_idx rows no gradient; here the positions that read those rows
  // get exactly none either, as long as pads are masked (probability 0 as keys) and unlabelled.
  const positions = batch.position_ids ?? paddingAwarePositionIds(inputIds, c.padTokenId); // [B,T]
  const outputs: Record<string, Tensor> = {};
  const x = bertEncode(encoder(c), P, { inputIds, tokenTypes, positions, mask }, options, outputs);
  const logits = mlmLogits(encoder(c), P, x, options.tap); // [B,T,V]
  outputs.logits = logits;
  let loss: Tensor = tf.scalar(Number.NaN);
  if (batch.labels) {
    loss = crossEntropy(logits, batch.labels, HF_IGNORE_INDEX);
    outputs.loss = loss;
  }
  return { loss, parts: {}, outputs };
}

export function robertaModel(config: RobertaConfig): ModelBody<RobertaConfig> {
  return {
    config,
    specs: robertaParamSpecs(config),
    inputNames: ['input_ids', 'token_type_ids', 'attention_mask', 'position_ids', 'labels'],
    forward: (P, batch, options) => robertaForward(config, P, batch, options),
    layerOutputOrder: () => Array.from({ length: config.layers + 1 }, (_, i) => `hidden_states.${i}`),
    paddedAxes: [
      { pattern: /^(hidden_states\.\d+|logits)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^attentions\.\d+$/, maskInput: 'attention_mask', axis: 2 },
      // Taps: values over positions [B,T,…], and attention scores/probabilities over queries.
      { pattern: /^(embeddings(\.norm)?|layer\.\d+\/(attn\.(out|residual)|attn_norm|mlp\.\w+|mlp_norm)|head\.\w+|logits)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^layer\.\d+\/attn\.(scores|probs)$/, maskInput: 'attention_mask', axis: 2 },
    ],
  };
}
