/**
 * GPT2LMHeadModel from the shared layers: learned positions, pre-LN blocks, tanh GELU, LayerNorm
 * eps 1e-5, causal plus padding mask, a final norm and the LM head — tied to the word embeddings,
 * as HF ties it by default, or its own `lm_head` matrix (tie_word_embeddings false).
 * The forward takes an optional key/value cache, so generation can feed one token per step.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import type { Activation } from '../layers/activations.ts';
import type { KeyValue } from '../layers/attention.ts';
import { embed, positionIds } from '../layers/embedding.ts';
import { lmLogits } from '../layers/heads.ts';
import { nextTokenLoss } from '../layers/losses.ts';
import { causalMaskBias, FLOAT32_MIN, paddingMaskBias } from '../layers/masks.ts';
import { layerNorm } from '../layers/norm.ts';
import { tap } from '../layers/taps.ts';
import { transformerLayer } from '../layers/transformer-layer.ts';
import { blockParams, blockSpecs, normSpecs } from './blocks.ts';
import { blockOptions, type Batch, type ForwardOptions, type ForwardResult, type ModelBody } from './model.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

export interface Gpt2Config {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  inner: number;
  maxPositions: number;
  layerNormEps: number;
  activation: Activation;
  /** Divide scores by √d_head (HF scale_attn_weights). */
  scaleScores: boolean;
  maskFill: number;
  /** LM head = word embeddings (HF tie_word_embeddings); false: a separate `lm_head` [V, H]. */
  tied: boolean;
}


const BLOCK = { bias: true, gated: false, norm: 'layer' as const, cross: false };

export function gpt2ParamSpecs(c: Gpt2Config): ParamSpec[] {
  const specs: ParamSpec[] = [
    { name: 'embeddings.word', shape: [c.vocabSize, c.hidden] },
    { name: 'embeddings.position', shape: [c.maxPositions, c.hidden] },
  ];
  for (let i = 0; i < c.layers; i++) specs.push(...blockSpecs(`layers.${i}`, { ...BLOCK, hidden: c.hidden, inner: c.hidden, ffn: c.inner }));
  specs.push(...normSpecs('final_norm', c.hidden, 'layer'));
  if (!c.tied) specs.push({ name: 'lm_head', shape: [c.vocabSize, c.hidden] });
  return specs;
}

export interface DecoderState {
  /** One key/value cache per layer: the positions already seen. */
  past?: KeyValue[];
}

export interface Gpt2Result extends ForwardResult {
  /** Keys/values including this call's positions, for the next decoding step. */
  cache: KeyValue[];
}

/**
 * batch: input_ids [B,T]; attention_mask [B, Tpast+T] (1 = real); position_ids [B,T] (default
 * Tpast…Tpast+T−1, what HF uses without them — right padding); labels [B,T] (shifted inside).
 */
export function gpt2Forward(c: Gpt2Config, P: ParamLookup, batch: Batch, options: ForwardOptions, state: DecoderState = {}): Gpt2Result {
  const inputIds = batch.input_ids;
  if (!inputIds) throw new Error('batch has no input_ids');
  const [batchSize, time] = inputIds.shape as [number, number];
  const pastLength = state.past?.[0]?.k.shape[2] ?? 0;
  const keys = pastLength + time;
  const mask = batch.attention_mask ?? tf.ones([batchSize, keys], 'int32');
  const positions = batch.position_ids ?? positionIds(time, pastLength);
  const outputs: Record<string, Tensor> = {};
  const sink = options.tap;

  let x = tap(sink, 'embeddings', tf.add(embed(inputIds, P('embeddings.word')), embed(positions, P('embeddings.position'))));
  // HF: causal where(causal, w, min), then + (1 − mask)·min. Adding min to a finite score gives min,
  // so one additive bias reproduces both, down to the −inf where a padded key is also in the future.
  const bias = tap(sink, 'attention_bias', tf.add(causalMaskBias(time, keys, c.maskFill, pastLength), paddingMaskBias(mask, c.maskFill))); // [B,1,T,Tk]
  const layerOpts = { heads: c.heads, scaleScores: c.scaleScores, placement: 'pre' as const, norm: { kind: 'layer' as const, eps: c.layerNormEps }, activation: c.activation };
  const cache: KeyValue[] = [];
  for (let i = 0; i < c.layers; i++) {
    if (options.taps) outputs[`hidden_states.${i}`] = x;
    const r = transformerLayer(blockParams(P, `layers.${i}`, BLOCK), blockOptions(options, `layer.${i}`, layerOpts), { x, selfBias: bias, past: state.past?.[i] });
    x = r.out;
    cache.push(r.selfKv);
    if (options.taps) outputs[`attentions.${i}`] = r.selfProbs;
  }
  x = tap(sink, 'final_norm', layerNorm(x, { weight: P('final_norm.weight'), bias: P('final_norm.bias') }, c.layerNormEps));
  if (options.taps) outputs[`hidden_states.${c.layers}`] = x;
  const logits = tap(sink, 'logits', lmLogits(x, P(c.tied ? 'embeddings.word' : 'lm_head'))); // [B,T,V]
  outputs.logits = logits;

  let loss: Tensor = tf.scalar(Number.NaN);
  if (batch.labels) {
    loss = nextTokenLoss(logits, batch.labels);
    outputs.loss = loss;
  }
  return { loss, parts: {}, outputs, cache };
}

export function gpt2Model(config: Gpt2Config): ModelBody<Gpt2Config> {
  return {
    config,
    specs: gpt2ParamSpecs(config),
    inputNames: ['input_ids', 'attention_mask', 'position_ids', 'labels'],
    forward: (P, batch, options) => gpt2Forward(config, P, batch, options),
    layerOutputOrder: () => Array.from({ length: config.layers + 1 }, (_, i) => `hidden_states.${i}`),
    paddedAxes: [
      { pattern: /^(hidden_states\.\d+|logits)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^attentions\.\d+$/, maskInput: 'attention_mask', axis: 2 },
      // Taps: values over positions [B,T,…], and attention scores/probabilities over queries.
      { pattern: /^(embeddings|layer\.\d+\/(attn\.(out|residual)|attn_norm|mlp\.\w+|mlp_norm)|final_norm|logits)$/, maskInput: 'attention_mask', axis: 1 },
      { pattern: /^layer\.\d+\/attn\.(scores|probs)$/, maskInput: 'attention_mask', axis: 2 },
    ],
    generation: {
      kind: 'decoder-only',
      step: (P, inputs, cache) => {
        const r = gpt2Forward(config, P, { input_ids: inputs.inputIds, attention_mask: inputs.attentionMask, position_ids: inputs.positionIds }, { taps: false }, { past: cache as KeyValue[] | undefined });
        return { logits: r.outputs.logits, cache: r.cache };
      },
    },
  };
}
