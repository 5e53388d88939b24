/**
 * BertForPreTraining (MLM head with the decoder tied to the word embeddings, plus the NSP head),
 * assembled from the shared layers. The same builder gives Megatron's pre-LN BERT (HF
 * MegatronBertForPreTraining): norms before each sublayer, no embedding norm, a final norm.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { activation, type Activation } from '../layers/activations.ts';
import { embed, positionIds } from '../layers/embedding.ts';
import { linear } from '../layers/linear.ts';
import { lmLogits, pooler } from '../layers/heads.ts';
import { crossEntropy, HF_IGNORE_INDEX } from '../layers/losses.ts';
import { FLOAT32_MIN, paddingMaskBias } from '../layers/masks.ts';
import { layerNorm } from '../layers/norm.ts';
import { tap, type TapSink } from '../layers/taps.ts';
import { transformerLayer, type NormSpec } from '../layers/transformer-layer.ts';
import { blockParams, blockSpecs, linearParams, linearSpecs, normSpecs } from './blocks.ts';
import { blockOptions, type Batch, type ForwardOptions, type ForwardResult, type ModelBody } from './model.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

export interface BertConfig {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
  /** Encoder MLP activation; the MLM head transform uses the same one (HF `transform_act_fn`)… */
  hiddenAct: Activation;
  /** …unless set here: Megatron's LM head is exact erf even when its MLP fuses the tanh form. */
  headAct?: Activation;
  /** post: BERT. pre: Megatron BERT (also drops the embedding norm and adds a final norm). */
  placement: 'post' | 'pre';
  /** Added at padded keys before the softmax. */
  maskFill: number;
  /** Names of the loss parts as the reference stores them. */
  lossNames: { mlm: string; nsp: string };
  /** Target value the NSP loss skips (HF −100; Megatron's sop loss −1). */
  nspIgnoreIndex: number;
}


/** What BERT's embeddings, encoder and MLM head read; RoBERTa (roberta.ts) builds on the same pieces. */
export type BertEncoderConfig = Pick<BertConfig, 'vocabSize' | 'hidden' | 'layers' | 'heads' | 'intermediate' | 'maxPositions' | 'typeVocabSize' | 'layerNormEps' | 'hiddenAct' | 'headAct' | 'placement' | 'maskFill'>;

const BLOCK = { bias: true, gated: false, norm: 'layer' as const, cross: false };

/** Embeddings (word, position, token type, and the norm of post-LN BERT), the layers, and pre-LN's final norm. */
export function bertEncoderSpecs(c: BertEncoderConfig): ParamSpec[] {
  const pre = c.placement === 'pre';
  const shape = { hidden: c.hidden, inner: c.hidden, ffn: c.intermediate, ...BLOCK };
  const specs: ParamSpec[] = [
    { name: 'embeddings.word', shape: [c.vocabSize, c.hidden] },
    { name: 'embeddings.position', shape: [c.maxPositions, c.hidden] },
    { name: 'embeddings.token_type', shape: [c.typeVocabSize, c.hidden] },
  ];
  if (!pre) specs.push(...normSpecs('embeddings.norm', c.hidden, 'layer'));
  for (let i = 0; i < c.layers; i++) specs.push(...blockSpecs(`layers.${i}`, shape));
  if (pre) specs.push(...normSpecs('final_norm', c.hidden, 'layer'));
  return specs;
}

/** The MLM head's transform and norm, and the bias of its decoder (whose weight is the word embedding). */
export function mlmHeadSpecs(c: BertEncoderConfig): ParamSpec[] {
  return [...linearSpecs('lm_head.transform', c.hidden, c.hidden, true), ...normSpecs('lm_head.norm', c.hidden, 'layer'), { name: 'lm_head.bias', shape: [c.vocabSize] }];
}

export function bertParamSpecs(c: BertConfig): ParamSpec[] {
  return [...bertEncoderSpecs(c), ...linearSpecs('pooler', c.hidden, c.hidden, true), ...mlmHeadSpecs(c), ...linearSpecs('nsp', c.hidden, 2, true)];
}

/**
 * Embeddings and encoder: ids, token types and positions [B|1, T], mask [B, T] -> the last hidden
 * state [B, T, H] (pre-LN: after the final norm). Hidden states and attentions go into `outputs`
 * when options.taps is set; sub-block values go to options.tap.
 */
export function bertEncode(c: BertEncoderConfig, P: ParamLookup, ids: { inputIds: Tensor; tokenTypes: Tensor; positions: Tensor; mask: Tensor }, options: ForwardOptions, outputs: Record<string, Tensor>): Tensor {
  const norm: NormSpec = { kind: 'layer', eps: c.layerNormEps };
  const sink = options.tap;
  // HF order: (word + token type) + position, then the embedding norm (post-LN BERT only).
  let x = tap(sink, 'embeddings', tf.add(tf.add(embed(ids.inputIds, P('embeddings.word')), embed(ids.tokenTypes, P('embeddings.token_type'))), embed(ids.positions, P('embeddings.position'))));
  if (c.placement === 'post') x = tap(sink, 'embeddings.norm', layerNorm(x, { weight: P('embeddings.norm.weight'), bias: P('embeddings.norm.bias') }, c.layerNormEps));
  if (options.taps) outputs['hidden_states.0'] = x;

  const bias = tap(sink, 'attention_bias', paddingMaskBias(ids.mask, c.maskFill)); // [B,1,1,T]
  const layerOpts = { heads: c.heads, scaleScores: true, placement: c.placement, norm, activation: c.hiddenAct };
  for (let i = 0; i < c.layers; i++) {
    const result = transformerLayer(blockParams(P, `layers.${i}`, BLOCK), blockOptions(options, `layer.${i}`, layerOpts), { x, selfBias: bias });
    x = result.out;
    if (options.taps) {
      outputs[`hidden_states.${i + 1}`] = x;
      outputs[`attentions.${i}`] = result.selfProbs;
    }
  }
  if (c.placement === 'pre') {
    x = tap(sink, 'final_norm', layerNorm(x, { weight: P('final_norm.weight'), bias: P('final_norm.bias') }, c.layerNormEps));
    // HF MegatronBert reports the normed output in place of the last layer's raw one.
    if (options.taps) outputs[`hidden_states.${c.layers}`] = x;
  }
  return x;
}

/** MLM head: norm(act(dense(h))) · Eᵀ + bias, [B,T,H] -> [B,T,V], with E the word embedding. */
export function mlmLogits(c: BertEncoderConfig, P: ParamLookup, x: Tensor, sink?: TapSink): Tensor {
  const dense = tap(sink, 'head.transform', linear(x, linearParams(P, 'lm_head.transform', true)));
  const transformed = tap(sink, 'head.norm', layerNorm(tap(sink, 'head.act', activation(dense, c.headAct ?? c.hiddenAct)), { weight: P('lm_head.norm.weight'), bias: P('lm_head.norm.bias') }, c.layerNormEps));
  return tap(sink, 'logits', lmLogits(transformed, P('embeddings.word'), P('lm_head.bias'))); // [B,T,V]
}

export function bertForward(c: BertConfig, P: ParamLookup, batch: Batch, options: ForwardOptions): ForwardResult {
  const inputIds = requireInput(batch, 'input_ids');
  const [batchSize, time] = inputIds.shape as [number, number];
  const tokenTypes = batch.token_type_ids ?? tf.zeros([batchSize, time], 'int32');
  const mask = batch.attention_mask ?? tf.ones([batchSize, time], 'int32');
  const outputs: Record<string, Tensor> = {};
  const sink = options.tap;
  const x = bertEncode(c, P, { inputIds, tokenTypes, positions: positionIds(time), mask }, options, outputs);

  const predictionLogits = mlmLogits(c, P, x, sink);
  const pooled = tap(sink, 'pooler', pooler(x, linearParams(P, 'pooler', true))); // [B,H]
  const nspLogits = tap(sink, 'nsp_logits', linear(pooled, linearParams(P, 'nsp', true))); // [B,2]
  outputs.prediction_logits = predictionLogits;
  outputs.seq_relationship_logits = nspLogits;

  const parts: Record<string, Tensor> = {};
  let loss: Tensor | undefined;
  if (batch.labels) {
    parts[c.lossNames.mlm] = crossEntropy(predictionLogits, batch.labels, HF_IGNORE_INDEX);
    loss = parts[c.lossNames.mlm];
  }
  if (batch.next_sentence_label) {
    parts[c.lossNames.nsp] = crossEntropy(nspLogits, batch.next_sentence_label, c.nspIgnoreIndex);
    loss = loss ? tf.add(loss, parts[c.lossNames.nsp]) : parts[c.lossNames.nsp];
  }
  for (const [k, v] of Object.entries(parts)) outputs[k] = v;
  if (loss) outputs.loss = loss;
  return { loss: loss ?? tf.scalar(Number.NaN), parts, outputs };
}

export function bertModel(config: BertConfig): ModelBody<BertConfig> {
  return {
    config,
    specs: bertParamSpecs(config),
    inputNames: ['input_ids', 'token_type_ids', 'attention_mask', 'labels', 'next_sentence_label'],
    forward: (P, batch, options) => bertForward(config, P, batch, options),
    layerOutputOrder: () => Array.from({ length: config.layers + 1 }, (_, i) => `hidden_states.${i}`),
    paddedAxes: [
      { pattern: /^(hidden_states\.\d+|prediction_logits)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^attentions\.\d+$/, maskInput: 'attention_mask', axis: 2 },
      // Taps: values over positions [B,T,…], and attention scores/probabilities over queries.
      { pattern: /^(embeddings(\.norm)?|layer\.\d+\/(attn\.(out|residual)|attn_norm|mlp\.\w+|mlp_norm)|final_norm|head\.\w+|logits)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^layer\.\d+\/attn\.(scores|probs)$/, maskInput: 'attention_mask', axis: 2 },
    ],
  };
}

export function requireInput(batch: Batch, name: string): Tensor {
  const t = batch[name];
  if (!t) throw new Error(`batch has no ${name}`);
  return t;
}
