/**
 * BertForPreTraining (MLM head with the decoder tied to the word embeddings, plus the NSP head),
 * assembled from the shared layers. The same builder gives Megatron's pre-LN BERT (HF
 * MegatronBertForPreTraining): norms before each sublayer, no embedding norm, a final norm.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { InputError } from '../errors.ts';
import { parseActivation, activation, type Activation } from '../layers/activations.ts';
import { embed, positionIds } from '../layers/embedding.ts';
import { linear } from '../layers/linear.ts';
import { lmLogits, pooler } from '../layers/heads.ts';
import { crossEntropy, HF_IGNORE_INDEX } from '../layers/losses.ts';
import { FLOAT32_MIN, paddingMaskBias } from '../layers/masks.ts';
import { layerNorm } from '../layers/norm.ts';
import { tap } from '../layers/taps.ts';
import { transformerLayer, type NormSpec } from '../layers/transformer-layer.ts';
import { blockParams, blockSpecs, linearParams, linearSpecs, normSpecs } from './blocks.ts';
import { ConfigReader, type JsonObject } from './hf-config.ts';
import { blockOptions, type Batch, type ForwardOptions, type ForwardResult, type Model } from './model.ts';
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

/** bert-base-uncased sizes; a starting point for tests and benchmarks. */
export function bertBase(): BertConfig {
  return {
    vocabSize: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072, maxPositions: 512, typeVocabSize: 2,
    layerNormEps: 1e-12, hiddenAct: 'gelu', placement: 'post', maskFill: FLOAT32_MIN,
    lossNames: { mlm: 'mlm_loss', nsp: 'nsp_loss' }, nspIgnoreIndex: HF_IGNORE_INDEX,
  };
}

/** From HF config.json (model_type "bert" or "megatron-bert"), with HF's class defaults. */
export function bertConfigFromHf(json: JsonObject, file: string): BertConfig {
  const c = new ConfigReader(json, file);
  const modelType = c.oneOf('model_type', ['bert', 'megatron-bert'] as const);
  c.oneOf('position_embedding_type', ['absolute'] as const, 'absolute');
  const config: BertConfig = {
    vocabSize: c.positive('vocab_size', 30522),
    hidden: c.positive('hidden_size', 768),
    layers: c.int('num_hidden_layers', 12),
    heads: c.positive('num_attention_heads', 12),
    intermediate: c.positive('intermediate_size', 3072),
    maxPositions: c.positive('max_position_embeddings', 512),
    typeVocabSize: c.positive('type_vocab_size', 2),
    layerNormEps: c.float('layer_norm_eps', 1e-12),
    hiddenAct: parseActivation(json.hidden_act ?? 'gelu', `${file}: hidden_act`),
    placement: modelType === 'megatron-bert' ? 'pre' : 'post',
    // HF 4.30.2 masks with finfo.min for both classes; the Megatron-vs-HF difference is confined to padded rows.
    maskFill: FLOAT32_MIN,
    lossNames: modelType === 'megatron-bert' ? { mlm: 'lm_loss', nsp: 'binary_loss' } : { mlm: 'mlm_loss', nsp: 'nsp_loss' },
    nspIgnoreIndex: modelType === 'megatron-bert' ? -1 : HF_IGNORE_INDEX,
  };
  c.requireDivisible('hidden_size', config.hidden, config.heads, 'num_attention_heads');
  if (!c.bool('tie_word_embeddings', true)) {
    throw new InputError('untied BERT decoders are not supported', { file, tensor: 'tie_word_embeddings', expected: 'true', actual: 'false' });
  }
  return config;
}

export function bertParamSpecs(c: BertConfig): ParamSpec[] {
  const pre = c.placement === 'pre';
  const shape = { hidden: c.hidden, inner: c.hidden, ffn: c.intermediate, bias: true, gated: false, norm: 'layer' as const, cross: false };
  const specs: ParamSpec[] = [
    { name: 'embeddings.word', shape: [c.vocabSize, c.hidden] },
    { name: 'embeddings.position', shape: [c.maxPositions, c.hidden] },
    { name: 'embeddings.token_type', shape: [c.typeVocabSize, c.hidden] },
  ];
  if (!pre) specs.push(...normSpecs('embeddings.norm', c.hidden, 'layer'));
  for (let i = 0; i < c.layers; i++) specs.push(...blockSpecs(`layers.${i}`, shape));
  if (pre) specs.push(...normSpecs('final_norm', c.hidden, 'layer'));
  specs.push(
    ...linearSpecs('pooler', c.hidden, c.hidden, true),
    ...linearSpecs('lm_head.transform', c.hidden, c.hidden, true),
    ...normSpecs('lm_head.norm', c.hidden, 'layer'),
    { name: 'lm_head.bias', shape: [c.vocabSize] },
    ...linearSpecs('nsp', c.hidden, 2, true),
  );
  return specs;
}

export function bertForward(c: BertConfig, P: ParamLookup, batch: Batch, options: ForwardOptions): ForwardResult {
  const inputIds = requireInput(batch, 'input_ids');
  const [batchSize, time] = inputIds.shape as [number, number];
  const tokenTypes = batch.token_type_ids ?? tf.zeros([batchSize, time], 'int32');
  const mask = batch.attention_mask ?? tf.ones([batchSize, time], 'int32');
  const norm: NormSpec = { kind: 'layer', eps: c.layerNormEps };
  const outputs: Record<string, Tensor> = {};
  const sink = options.tap;

  // HF order: (word + token type) + position, then the embedding norm (post-LN BERT only).
  let x = tap(sink, 'embeddings', tf.add(tf.add(embed(inputIds, P('embeddings.word')), embed(tokenTypes, P('embeddings.token_type'))), embed(positionIds(time), P('embeddings.position'))));
  if (c.placement === 'post') x = tap(sink, 'embeddings.norm', layerNorm(x, { weight: P('embeddings.norm.weight'), bias: P('embeddings.norm.bias') }, c.layerNormEps));
  if (options.taps) outputs['hidden_states.0'] = x;

  const bias = tap(sink, 'attention_bias', paddingMaskBias(mask, c.maskFill)); // [B,1,1,T]
  const layerOpts = { heads: c.heads, scaleScores: true, placement: c.placement, norm, activation: c.hiddenAct };
  for (let i = 0; i < c.layers; i++) {
    const result = transformerLayer(blockParams(P, `layers.${i}`, { bias: true, gated: false, norm: 'layer', cross: false }), blockOptions(options, `layer.${i}`, layerOpts), { x, selfBias: bias });
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

  const dense = tap(sink, 'head.transform', linear(x, linearParams(P, 'lm_head.transform', true)));
  const transformed = tap(sink, 'head.norm', layerNorm(tap(sink, 'head.act', activation(dense, c.headAct ?? c.hiddenAct)), { weight: P('lm_head.norm.weight'), bias: P('lm_head.norm.bias') }, c.layerNormEps));
  const predictionLogits = tap(sink, 'logits', lmLogits(transformed, P('embeddings.word'), P('lm_head.bias'))); // [B,T,V]
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

export function bertModel(config: BertConfig): Model<BertConfig> {
  return {
    family: config.placement === 'pre' ? 'megatron-bert' : 'bert',
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

function requireInput(batch: Batch, name: string): Tensor {
  const t = batch[name];
  if (!t) throw new Error(`batch has no ${name}`);
  return t;
}
