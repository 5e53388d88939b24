/**
 * LlamaForCausalLM (HF 4.33) from the shared layers: pre-norm blocks with RMS norm, grouped-query
 * attention with rotary positions (rotate_half, θ from the config) and scores scaled by 1/√d_head,
 * a SwiGLU MLP, no biases anywhere, a final RMS norm and an untied (or tied) LM head.
 * The forward takes an optional key/value cache holding the rotated keys of the key/value heads
 * only, so generation can feed one token per step.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import type { Activation } from '../layers/activations.ts';
import type { KeyValue } from '../layers/attention.ts';
import { embed, positionIds } from '../layers/embedding.ts';
import { lmLogits } from '../layers/heads.ts';
import { nextTokenLoss } from '../layers/losses.ts';
import { causalMaskBias, FLOAT32_MIN, paddingMaskBias } from '../layers/masks.ts';
import { rmsNorm } from '../layers/norm.ts';
import { rotaryAngles, rotaryTables, type RotaryTables } from '../layers/rotary.ts';
import { tap } from '../layers/taps.ts';
import { transformerLayer, type TransformerLayerOptions } from '../layers/transformer-layer.ts';
import { blockParams, blockSpecs, normSpecs } from './blocks.ts';
import type { DecoderState } from './gpt2.ts';
import { blockOptions, type Batch, type ForwardOptions, type ForwardResult, type ModelBody } from './model.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

export interface LlamaConfig {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  /** Key/value heads (HF num_key_value_heads); `heads` means plain multi-head attention. */
  kvHeads: number;
  /** hidden / heads. */
  headDim: number;
  intermediate: number;
  /** Rows of HF's precomputed rotary cache; longer sequences extend it, as HF does. */
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  activation: Activation;
  /** lm_head is the word embedding (tie_word_embeddings). */
  tied: boolean;
  maskFill: number;
}

/** Llama-2-7b sizes. */
export function llama2_7b(): LlamaConfig {
  return { vocabSize: 32000, hidden: 4096, layers: 32, heads: 32, kvHeads: 32, headDim: 128, intermediate: 11008, maxPositions: 4096, rmsNormEps: 1e-5, ropeTheta: 10000, activation: 'silu', tied: false, maskFill: FLOAT32_MIN };
}

const BLOCK = { bias: false, gated: true, norm: 'rms' as const, cross: false };

export function llamaParamSpecs(c: LlamaConfig): ParamSpec[] {
  const shape = { ...BLOCK, hidden: c.hidden, inner: c.heads * c.headDim, kvInner: c.kvHeads * c.headDim, ffn: c.intermediate };
  const specs: ParamSpec[] = [{ name: 'embeddings.word', shape: [c.vocabSize, c.hidden] }];
  for (let i = 0; i < c.layers; i++) specs.push(...blockSpecs(`layers.${i}`, shape));
  specs.push(...normSpecs('final_norm', c.hidden, 'rms'));
  if (!c.tied) specs.push({ name: 'lm_head', shape: [c.vocabSize, c.hidden] });
  return specs;
}

export interface LlamaResult extends ForwardResult {
  /** Keys (rotated) and values of the key/value heads including this call's positions: [B, nkv, Tpast+T, hd] each. */
  cache: KeyValue[];
}

/**
 * batch: input_ids [B,T]; attention_mask [B, Tpast+T] (1 = real); position_ids [B,T] (default
 * Tpast…Tpast+T−1, HF's arange — right padding); labels [B,T] (shifted inside).
 */
export function llamaForward(c: LlamaConfig, rotary: () => RotaryTables, P: ParamLookup, batch: Batch, options: ForwardOptions, state: DecoderState = {}): LlamaResult {
  const inputIds = batch.input_ids;
  if (!inputIds) throw new Error('batch has no input_ids');
  const [batchSize, time] = inputIds.shape as [number, number];
  const pastLength = state.past?.[0]?.k.shape[2] ?? 0;
  const keys = pastLength + time;
  const mask = batch.attention_mask ?? tf.ones([batchSize, keys], 'int32');
  const positions = batch.position_ids ?? positionIds(time, pastLength); // [B|1, T]
  const outputs: Record<string, Tensor> = {};
  const sink = options.tap;

  let x = tap(sink, 'embeddings', embed(inputIds, P('embeddings.word'))); // [B,T,H]
  // HF: causal finfo.min plus (1 − mask)·finfo.min; the sum is −inf where a padded key is also in the future.
  const bias = tap(sink, 'attention_bias', tf.add(causalMaskBias(time, keys, c.maskFill, pastLength), paddingMaskBias(mask, c.maskFill))); // [B,1,T,Tk]
  const angles = rotaryAngles(tableFor(rotary, c, keys), positions); // [B|1,1,T,hd]
  const layerOpts: TransformerLayerOptions = { heads: c.heads, kvHeads: c.kvHeads, scaleScores: true, placement: 'pre', norm: { kind: 'rms', eps: c.rmsNormEps }, activation: c.activation };
  const cache: KeyValue[] = [];
  for (let i = 0; i < c.layers; i++) {
    if (options.taps) outputs[`hidden_states.${i}`] = x;
    const r = transformerLayer(blockParams(P, `layers.${i}`, BLOCK), blockOptions(options, `layer.${i}`, layerOpts), { x, selfBias: bias, rotary: angles, past: state.past?.[i] });
    x = r.out;
    cache.push(r.selfKv);
    if (options.taps) outputs[`attentions.${i}`] = r.selfProbs;
  }
  // HF reports the normed output in place of the last layer's raw one.
  x = tap(sink, 'final_norm', rmsNorm(x, P('final_norm.weight'), c.rmsNormEps));
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

/** HF's rotary cache covers max_position_embeddings and is rebuilt longer when a sequence outgrows it. */
function tableFor(rotary: () => RotaryTables, c: LlamaConfig, keys: number): RotaryTables {
  const tables = rotary();
  return keys <= tables.positions ? tables : rotaryTables(c.headDim, c.ropeTheta, keys);
}

export function llamaModel(config: LlamaConfig): ModelBody<LlamaConfig> {
  let tables: RotaryTables | undefined;
  const rotary = () => (tables ??= rotaryTables(config.headDim, config.ropeTheta, config.maxPositions));
  return {
    config,
    specs: llamaParamSpecs(config),
    inputNames: ['input_ids', 'attention_mask', 'position_ids', 'labels'],
    forward: (P, batch, options) => llamaForward(config, rotary, P, batch, options),
    layerOutputOrder: () => Array.from({ length: config.layers + 1 }, (_, i) => `hidden_states.${i}`),
    // Right-padded positions are well defined in a causal model (they attend to the real tokens
    // before them, never to padded keys), and HF's outputs there are exact: every position is compared.
    paddedAxes: [],
    generation: {
      kind: 'decoder-only',
      step: (P, inputs, cache) => {
        const r = llamaForward(config, rotary, P, { input_ids: inputs.inputIds, attention_mask: inputs.attentionMask, position_ids: inputs.positionIds }, { taps: false }, { past: cache as KeyValue[] | undefined });
        return { logits: r.outputs.logits, cache: r.cache };
      },
    },
  };
}
