/**
 * What the harness needs from a model family: its parameters, a forward pass that returns the
 * loss and named outputs (named exactly as the reference stores them, so comparisons need no
 * translation), and the order of layer outputs for naming the first divergence.
 */
import type { Tensor } from '../backend/tf.ts';
import { scoped, type TapSink } from '../layers/taps.ts';
import type { TransformerLayerOptions } from '../layers/transformer-layer.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

/** Integer inputs by their HF keyword names: input_ids, attention_mask, labels, … */
export type Batch = Record<string, Tensor>;

export interface ForwardOptions {
  /** Also return hidden states and attention probabilities (costs memory; off in training). */
  taps: boolean;
  /**
   * Receives every sub-block value in model order under names like "embeddings",
   * "layer.1/attn.scores", "layer.1/mlp.act", "encoder/position_bias", "final_norm", "logits"
   * (see layers/taps.ts); divergence localization reads these.
   */
  tap?: TapSink;
  /** Per-layer changes to the options a block is built with ("layer.0", "decoder/layer.1"): for experiments and fault-injection tests. */
  layerOptions?: (layer: string, options: TransformerLayerOptions) => TransformerLayerOptions;
  /** Recompute each layer in the backward pass instead of keeping its activations (training; see transformerLayer). */
  recompute?: boolean;
}

/** The options for block `layer`: the family's own, with the tap sink scoped to the layer and any per-layer change applied. */
export function blockOptions(options: ForwardOptions, layer: string, base: TransformerLayerOptions): TransformerLayerOptions {
  const o = { ...base, tap: scoped(options.tap, layer), recompute: options.recompute };
  return options.layerOptions ? options.layerOptions(layer, o) : o;
}

export interface ForwardResult {
  loss: Tensor;
  /** Loss parts by reference name (mlm_loss, nsp_loss, …); empty for single-loss models. */
  parts: Record<string, Tensor>;
  /** Every named output: logits, hidden_states.i, attentions.i, … (taps only when asked). */
  outputs: Record<string, Tensor>;
}

export interface Model<Config = unknown> {
  /** The family's name in src/families/registry.ts, which sets it. */
  family: string;
  config: Config;
  specs: ParamSpec[];
  /** Inputs the forward reads from a batch (the rest are ignored). */
  inputNames: readonly string[];
  forward(params: ParamLookup, batch: Batch, options: ForwardOptions): ForwardResult;
  /** Reference tensor names of successive layer outputs, in model order. */
  layerOutputOrder(): string[];
  /**
   * Which outputs have a position axis governed by a padding mask input. References leave the
   * values at padded positions to each implementation, so comparisons skip them there.
   */
  paddedAxes: readonly PaddedAxis[];
  /** Present for models that generate text. */
  generation?: Generation;
}

/** What a model builder returns; the family that builds it adds its name (src/families/family.ts). */
export type ModelBody<Config = unknown> = Omit<Model<Config>, 'family'>;

/** Incremental decoding for a decoder-only model (GPT-2, LLaMA). */
export interface DecoderOnlyGeneration {
  kind: 'decoder-only';
  /**
   * Logits [B, t, V] for `inputIds` [B, t] at `positionIds` [B, t], attending over every earlier
   * position (`attentionMask` [B, past + t]); `cache` holds the earlier positions' keys/values.
   */
  step(params: ParamLookup, inputs: { inputIds: Tensor; attentionMask: Tensor; positionIds: Tensor }, cache: unknown): { logits: Tensor; cache: unknown };
}

/** Incremental decoding for an encoder-decoder (T5): encode once, then decode step by step. */
export interface EncoderDecoderGeneration {
  kind: 'encoder-decoder';
  decoderStartTokenId: number;
  encode(params: ParamLookup, inputIds: Tensor, attentionMask: Tensor): Tensor;
  /** Logits [B, t, V] for decoder tokens [B, t] after the `cache`d ones. */
  step(params: ParamLookup, inputs: { decoderIds: Tensor; encoderOut: Tensor; encoderMask: Tensor }, cache: unknown): { logits: Tensor; cache: unknown };
}

export type Generation = DecoderOnlyGeneration | EncoderDecoderGeneration;

export interface PaddedAxis {
  /** Output names this applies to. */
  pattern: RegExp;
  /** The batch input holding 1 = real, 0 = padding, shape [B, T]. */
  maskInput: string;
  /** Axis of the output indexed by position (batch is axis 0). */
  axis: number;
}
