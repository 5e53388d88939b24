/**
 * What the harness needs from a model family: its parameters, a forward pass that returns the
 * loss and named outputs (named exactly as the reference stores them, so comparisons need no
 * translation), and the order of layer outputs for naming the first divergence.
 */
import type { Tensor } from '../backend/tf.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

/** Integer inputs by their HF keyword names: input_ids, attention_mask, labels, … */
export type Batch = Record<string, Tensor>;

export interface ForwardOptions {
  /** Also return hidden states and attention probabilities (costs memory; off in training). */
  taps: boolean;
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
