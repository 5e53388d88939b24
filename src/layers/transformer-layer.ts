/**
 * One transformer block built from the shared sublayers. Placement decides where the norms sit:
 *   post (BERT):              x = N(x + attn(x));        x = N(x + mlp(x))
 *   pre  (GPT-2, Megatron, T5, LLaMA, ViT): x = x + attn(N(x));      x = x + mlp(N(x))
 * A decoder block (T5) adds cross-attention between the two, placed the same way.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import type { Activation } from './activations.ts';
import { crossAttention, selfAttention, type AttentionParams, type KeyValue } from './attention.ts';
import { mlp, type MlpParams } from './mlp.ts';
import { layerNorm, rmsNorm } from './norm.ts';
import type { RotaryAngles } from './rotary.ts';
import { scoped, tap, type TapSink } from './taps.ts';

export interface NormParams {
  weight: Tensor;
  /** Absent for RMS norm. */
  bias?: Tensor;
}

export type NormKind = 'layer' | 'rms';

export interface NormSpec {
  kind: NormKind;
  eps: number;
}

export function applyNorm(x: Tensor, p: NormParams, spec: NormSpec): Tensor {
  if (spec.kind === 'rms') return rmsNorm(x, p.weight, spec.eps);
  if (!p.bias) throw new Error('LayerNorm needs a bias');
  return layerNorm(x, { weight: p.weight, bias: p.bias }, spec.eps);
}

export interface TransformerLayerParams {
  selfAttn: AttentionParams;
  selfAttnNorm: NormParams;
  crossAttn?: AttentionParams;
  crossAttnNorm?: NormParams;
  mlp: MlpParams;
  mlpNorm: NormParams;
}

export interface TransformerLayerOptions {
  heads: number;
  /** Key/value heads of self-attention (grouped-query attention); default `heads`. */
  kvHeads?: number;
  scaleScores: boolean;
  placement: 'pre' | 'post';
  norm: NormSpec;
  activation: Activation;
  /**
   * Receives, in computation order, each sublayer's norm output (attn_norm, cross_norm, mlp_norm),
   * its inner taps (attn.scores, attn.probs, attn.out, mlp.fc_in, mlp.act, mlp.out, …) and its
   * residual sum (attn.residual, cross.residual, mlp.residual).
   */
  tap?: TapSink;
}

export interface TransformerLayerInputs {
  x: Tensor; // [B, T, H]
  /** Additive bias for self-attention: masks, plus T5's position bias. */
  selfBias?: Tensor;
  /** Rotary angles of x's positions (LLaMA), applied in self-attention. */
  rotary?: RotaryAngles;
  /** Cross-attention (decoder blocks only). */
  encoderOut?: Tensor | null;
  crossBias?: Tensor;
  /** Key/value cache of earlier positions (incremental decoding). */
  past?: KeyValue;
  /** Cross-attention keys/values computed once per encoder output. */
  crossMemory?: KeyValue;
}

export interface TransformerLayerOutputs {
  out: Tensor; // [B, T, H]
  selfProbs: Tensor;
  crossProbs?: Tensor;
  selfKv: KeyValue;
  crossKv?: KeyValue;
}

export function transformerLayer(p: TransformerLayerParams, o: TransformerLayerOptions, inputs: TransformerLayerInputs): TransformerLayerOutputs {
  const attnOpts = { heads: o.heads, scaleScores: o.scaleScores };
  const sink = o.tap;
  // name: "attn" | "cross" | "mlp"; its norm is tapped as `${name}_norm`, its sum as `${name}.residual`.
  const sub = (name: string, x: Tensor, norm: NormParams, f: (h: Tensor) => Tensor): Tensor => {
    const normed = (h: Tensor) => tap(sink, `${name}_norm`, applyNorm(h, norm, o.norm));
    const residual = (h: Tensor) => tap(sink, `${name}.residual`, h);
    return o.placement === 'pre' ? residual(tf.add(x, f(normed(x)))) : normed(residual(tf.add(x, f(x))));
  };

  let selfResult: ReturnType<typeof selfAttention> | undefined;
  let x = sub('attn', inputs.x, p.selfAttnNorm, (h) => {
    selfResult = selfAttention(h, p.selfAttn, { ...attnOpts, kvHeads: o.kvHeads, bias: inputs.selfBias, rotary: inputs.rotary, tap: scoped(sink, 'attn', '.') }, inputs.past);
    return selfResult.out;
  });

  let crossResult: ReturnType<typeof crossAttention> | undefined;
  if (p.crossAttn) {
    const crossParams = p.crossAttn;
    if (!p.crossAttnNorm) throw new Error('cross-attention needs its norm');
    x = sub('cross', x, p.crossAttnNorm, (h) => {
      crossResult = crossAttention(h, inputs.encoderOut ?? null, crossParams, { ...attnOpts, bias: inputs.crossBias, tap: scoped(sink, 'cross', '.') }, inputs.crossMemory);
      return crossResult.out;
    });
  }

  x = sub('mlp', x, p.mlpNorm, (h) => mlp(h, p.mlp, o.activation, scoped(sink, 'mlp', '.')));
  return {
    out: x,
    selfProbs: selfResult!.probs,
    selfKv: selfResult!.kv,
    crossProbs: crossResult?.probs,
    crossKv: crossResult?.kv,
  };
}
