/**
 * T5ForConditionalGeneration (v1.0 and v1.1) from the shared layers, split into embedding,
 * encoder and decoder so inference can encode once and decode step by step:
 *  - RMS norm (no mean, no bias, eps 1e-6), pre-norm blocks, no biases anywhere;
 *  - no 1/√d scaling of scores; a relative position bias computed once per stack by its first
 *    layer's table (bidirectional buckets in the encoder, causal in decoder self-attention, none
 *    in cross-attention) and shared by every layer of the stack;
 *  - ReLU MLP (v1.0) or gated GELU-tanh (v1.1, feed_forward_proj "gated-gelu");
 *  - tied head with the d_model^−½ rescale (v1.0) or an untied head without it (v1.1);
 *  - decoder inputs built from labels like HF's _shift_right.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import type { Activation } from '../layers/activations.ts';
import { projectKeyValue, type KeyValue } from '../layers/attention.ts';
import { embed } from '../layers/embedding.ts';
import { lmLogits } from '../layers/heads.ts';
import { crossEntropy, HF_IGNORE_INDEX } from '../layers/losses.ts';
import { causalMaskBias, FLOAT32_MIN, paddingMaskBias } from '../layers/masks.ts';
import { rmsNorm } from '../layers/norm.ts';
import { scoped, tap } from '../layers/taps.ts';
import { relativePositionBias, type RelativeBucketSpec } from '../layers/relative-position.ts';
import { transformerLayer, type TransformerLayerOptions } from '../layers/transformer-layer.ts';
import { blockParams, blockSpecs, normSpecs } from './blocks.ts';
import { blockOptions, type Batch, type ForwardOptions, type ForwardResult, type ModelBody } from './model.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

export interface T5Config {
  vocabSize: number;
  dModel: number;
  dKv: number;
  dFf: number;
  heads: number;
  encoderLayers: number;
  decoderLayers: number;
  buckets: number;
  maxDistance: number;
  eps: number;
  activation: Activation;
  gated: boolean;
  /** Tied head: logits = (h · d_model^−½) · sharedᵀ. Untied: logits = h · lm_headᵀ. */
  tied: boolean;
  decoderStartTokenId: number;
  padTokenId: number;
  maskFill: number;
}


const block = (c: T5Config, cross: boolean) => ({ hidden: c.dModel, inner: c.heads * c.dKv, ffn: c.dFf, bias: false, gated: c.gated, norm: 'rms' as const, cross, crossSource: c.dModel });

export function t5ParamSpecs(c: T5Config): ParamSpec[] {
  const specs: ParamSpec[] = [{ name: 'shared', shape: [c.vocabSize, c.dModel] }];
  specs.push({ name: 'encoder.relative_bias', shape: [c.buckets, c.heads] });
  for (let i = 0; i < c.encoderLayers; i++) specs.push(...blockSpecs(`encoder.layers.${i}`, block(c, false)));
  specs.push(...normSpecs('encoder.final_norm', c.dModel, 'rms'));
  specs.push({ name: 'decoder.relative_bias', shape: [c.buckets, c.heads] });
  for (let i = 0; i < c.decoderLayers; i++) specs.push(...blockSpecs(`decoder.layers.${i}`, block(c, true)));
  specs.push(...normSpecs('decoder.final_norm', c.dModel, 'rms'));
  if (!c.tied) specs.push({ name: 'lm_head', shape: [c.vocabSize, c.dModel] });
  return specs;
}

function layerOptions(c: T5Config): TransformerLayerOptions {
  return { heads: c.heads, scaleScores: false, placement: 'pre', norm: { kind: 'rms', eps: c.eps }, activation: c.activation };
}

/** The shared embedding, used by both stacks. */
export function t5Embed(P: ParamLookup, ids: Tensor): Tensor {
  return embed(ids, P('shared')); // [B,T] -> [B,T,d]
}

export interface StackOutput {
  out: Tensor;
  taps: Record<string, Tensor>;
}

const NO_TAPS: ForwardOptions = { taps: false };

/** Encoder stack: ids [B,T], mask [B,T] -> final-normed hidden [B,T,d]. Taps are named "encoder/…". */
export function t5Encode(c: T5Config, P: ParamLookup, inputIds: Tensor, mask: Tensor, options: ForwardOptions = NO_TAPS): StackOutput {
  const taps = options.taps;
  const sink = scoped(options.tap, 'encoder');
  const T = inputIds.shape[1] as number;
  const spec: RelativeBucketSpec = { buckets: c.buckets, maxDistance: c.maxDistance, bidirectional: true };
  let x = tap(sink, 'embeddings', t5Embed(P, inputIds));
  // Computed once by the first layer's table, then shared by all layers: HF adds the mask once too.
  const bias = tap(sink, 'position_bias', tf.add(relativePositionBias(P('encoder.relative_bias'), T, T, spec), paddingMaskBias(mask, c.maskFill))); // [B,nh,T,T]
  const out: Record<string, Tensor> = {};
  for (let i = 0; i < c.encoderLayers; i++) {
    if (taps) out[`encoder_hidden_states.${i}`] = x;
    const r = transformerLayer(blockParams(P, `encoder.layers.${i}`, block(c, false)), blockOptions(options, `encoder/layer.${i}`, layerOptions(c)), { x, selfBias: bias });
    x = r.out;
    if (taps) out[`encoder_attentions.${i}`] = r.selfProbs;
  }
  x = tap(sink, 'final_norm', rmsNorm(x, P('encoder.final_norm.weight'), c.eps));
  if (taps) {
    out[`encoder_hidden_states.${c.encoderLayers}`] = x;
    out.encoder_last_hidden_state = x;
  }
  return { out: x, taps: out };
}

/** Per decoder layer: self-attention keys/values so far, and cross-attention keys/values of the encoder output. */
export interface DecoderCache {
  self: KeyValue[];
  cross: KeyValue[];
}

export interface DecodeOutput extends StackOutput {
  logits: Tensor;
  cache: DecoderCache;
}

/**
 * Decoder stack + head for decoder tokens [B,t] that follow the `cache`d ones (none: the whole
 * prefix). Cross-attention keys/values come from the cache when present, else from encoderOut.
 */
export function t5Decode(c: T5Config, P: ParamLookup, decoderIds: Tensor, encoderOut: Tensor, encoderMask: Tensor, cache?: DecoderCache, options: ForwardOptions = NO_TAPS): DecodeOutput {
  const taps = options.taps;
  const sink = scoped(options.tap, 'decoder');
  const t = decoderIds.shape[1] as number;
  const past = cache?.self[0]?.k.shape[2] ?? 0;
  const keys = past + t;
  const spec: RelativeBucketSpec = { buckets: c.buckets, maxDistance: c.maxDistance, bidirectional: false };
  let x = tap(sink, 'embeddings', t5Embed(P, decoderIds));
  // HF computes the bias for all positions and keeps the last t rows; we compute those rows.
  const selfBias = tap(sink, 'position_bias', tf.add(relativePositionBias(P('decoder.relative_bias'), t, keys, spec, past), causalMaskBias(t, keys, c.maskFill, past))); // [1,nh,t,Tk]
  const crossBias = paddingMaskBias(encoderMask, c.maskFill); // [B,1,1,Tenc]: cross-attention has no position bias
  const out: Record<string, Tensor> = {};
  const next: DecoderCache = { self: [], cross: [] };
  for (let i = 0; i < c.decoderLayers; i++) {
    if (taps) out[`decoder_hidden_states.${i}`] = x;
    const params = blockParams(P, `decoder.layers.${i}`, block(c, true));
    const crossMemory = cache?.cross[i] ?? projectKeyValue(encoderOut, params.crossAttn!, c.heads);
    const r = transformerLayer(params, blockOptions(options, `decoder/layer.${i}`, layerOptions(c)), { x, selfBias, encoderOut, crossBias, past: cache?.self[i], crossMemory });
    x = r.out;
    next.self.push(r.selfKv);
    next.cross.push(crossMemory);
    if (taps) {
      out[`decoder_attentions.${i}`] = r.selfProbs;
      out[`cross_attentions.${i}`] = r.crossProbs!;
    }
  }
  x = tap(sink, 'final_norm', rmsNorm(x, P('decoder.final_norm.weight'), c.eps));
  if (taps) out[`decoder_hidden_states.${c.decoderLayers}`] = x;
  const logits = tap(options.tap, 'logits', c.tied ? lmLogits(tf.mul(x, c.dModel ** -0.5), P('shared')) : lmLogits(x, P('lm_head')));
  return { out: x, taps: out, logits, cache: next };
}

/** HF _shift_right: [start, labels[:-1]] with −100 replaced by the pad id. */
export function shiftRight(labels: Tensor, startTokenId: number, padTokenId: number): Tensor {
  const [B, T] = labels.shape as [number, number];
  const start = tf.fill([B, 1], startTokenId, 'int32');
  const shifted = tf.concat([start, tf.slice(tf.cast(labels, 'int32'), [0, 0], [B, T - 1])], 1);
  return tf.where(tf.equal(shifted, HF_IGNORE_INDEX), tf.fill([B, T], padTokenId, 'int32'), shifted);
}

export function t5Forward(c: T5Config, P: ParamLookup, batch: Batch, options: ForwardOptions): ForwardResult {
  const inputIds = batch.input_ids;
  if (!inputIds) throw new Error('batch has no input_ids');
  const mask = batch.attention_mask ?? tf.onesLike(inputIds);
  const decoderIds = batch.decoder_input_ids ?? (batch.labels ? shiftRight(batch.labels, c.decoderStartTokenId, c.padTokenId) : null);
  if (!decoderIds) throw new Error('batch has neither decoder_input_ids nor labels');
  const enc = t5Encode(c, P, inputIds, mask, options);
  const dec = t5Decode(c, P, decoderIds, enc.out, mask, undefined, options);
  const outputs: Record<string, Tensor> = { ...enc.taps, ...dec.taps, logits: dec.logits };
  let loss: Tensor = tf.scalar(Number.NaN);
  if (batch.labels) {
    loss = crossEntropy(dec.logits, batch.labels, HF_IGNORE_INDEX);
    outputs.loss = loss;
  }
  return { loss, parts: {}, outputs };
}

export function t5Model(config: T5Config): ModelBody<T5Config> {
  return {
    config,
    specs: t5ParamSpecs(config),
    inputNames: ['input_ids', 'attention_mask', 'decoder_input_ids', 'labels'],
    forward: (P, batch, options) => t5Forward(config, P, batch, options),
    layerOutputOrder: () => [
      ...Array.from({ length: config.encoderLayers + 1 }, (_, i) => `encoder_hidden_states.${i}`),
      ...Array.from({ length: config.decoderLayers + 1 }, (_, i) => `decoder_hidden_states.${i}`),
    ],
    paddedAxes: [
      { pattern: /^(encoder_hidden_states\.\d+|encoder_last_hidden_state)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^encoder_attentions\.\d+$/, maskInput: 'attention_mask', axis: 2 },
      // Encoder taps: values over positions [B,T,…], attention scores/probabilities over queries.
      // Decoder positions are never padded (labels are, but HF attends over them causally).
      { pattern: /^encoder\/(embeddings|layer\.\d+\/(attn\.(out|residual)|attn_norm|mlp\.\w+|mlp_norm)|final_norm)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^encoder\/(layer\.\d+\/attn\.(scores|probs)|position_bias)$/, maskInput: 'attention_mask', axis: 2 },
    ],
    generation: {
      kind: 'encoder-decoder',
      decoderStartTokenId: config.decoderStartTokenId,
      encode: (P, ids, mask) => t5Encode(config, P, ids, mask).out,
      step: (P, inputs, cache) => {
        const r = t5Decode(config, P, inputs.decoderIds, inputs.encoderOut, inputs.encoderMask, cache as DecoderCache | undefined);
        return { logits: r.logits, cache: r.cache };
      },
    },
  };
}
