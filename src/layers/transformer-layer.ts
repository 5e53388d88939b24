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
  /**
   * Keep only the layer's inputs for the backward pass and run the layer again there (activation
   * checkpointing): a training step then holds one layer's activations instead of every layer's,
   * for about one more forward of compute. The recomputation runs the same ops on the same values,
   * so gradients are bit-identical. Training only: no taps, no cache, and only `out` is returned.
   */
  recompute?: boolean;
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

/**
 * One layer in its own tidy scope: what the layer made and does not return (norm outputs, scores,
 * the MLP's inner activations) is released when the layer ends, not when the whole model does, so
 * a forward holds one layer's temporaries at a time. Under a gradient tape this changes nothing the
 * backward needs: tfjs keeps its own clone of every tensor a gradient saves.
 */
export function transformerLayer(p: TransformerLayerParams, o: TransformerLayerOptions, inputs: TransformerLayerInputs): TransformerLayerOutputs {
  if (o.recompute) return recomputedLayer(p, o, inputs);
  return tf.tidy(() => layerBody(p, o, inputs) as unknown as tf.TensorContainer) as unknown as TransformerLayerOutputs;
}

function recomputedLayer(p: TransformerLayerParams, o: TransformerLayerOptions, inputs: TransformerLayerInputs): TransformerLayerOutputs {
  if (o.tap || inputs.past) throw new Error('recompute is for training: no taps and no decoding cache');
  const { tensors, rebuild } = flattenTensors({ p, inputs });
  const outOf = (ts: Tensor[]) => {
    const again = rebuild(ts) as { p: TransformerLayerParams; inputs: TransformerLayerInputs };
    return layerBody(again.p, { ...o, recompute: false }, again.inputs).out;
  };
  const run = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as (tensors: Tensor[]) => void;
    const xs = args as Tensor[];
    save(xs);
    return { value: tf.tidy(() => outOf(xs)), gradFunc: (dy: Tensor, saved: Tensor[]) => gradientsInsideBackward(outOf, saved, dy) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const out = run(...tensors) as Tensor;
  // Probabilities and key/value projections live only inside the recomputation; training reads `out` alone.
  return { out } as TransformerLayerOutputs;
}

interface EngineTapeState {
  state: { activeTape: unknown };
}

/**
 * d(f(xs))/dxs · dy, computed while the engine is running an outer backward pass. tfjs 4.22's
 * engine.gradients clears "the" tape when it finishes at depth 0, which here would be the outer
 * pass's: the outer tape is set aside and put back. An input f does not reach gets zeros.
 */
function gradientsInsideBackward(f: (xs: Tensor[]) => Tensor, xs: Tensor[], dy: Tensor): Tensor[] {
  const engine = tf.engine() as unknown as EngineTapeState & { gradients(f: () => Tensor, xs: Tensor[], dy: Tensor, allowNoGradients: boolean): { value: Tensor; grads: Array<Tensor | null> } };
  const outer = engine.state.activeTape;
  try {
    const { value, grads } = engine.gradients(() => f(xs), xs, dy, true);
    value.dispose();
    return grads.map((g, i) => g ?? tf.zerosLike(xs[i]));
  } finally {
    engine.state.activeTape = outer;
  }
}

class Slot {
  constructor(readonly index: number) {}
}

/** Every tensor in a tree of plain objects (in a fixed order), and the same tree with other tensors in their places. */
function flattenTensors(tree: object): { tensors: Tensor[]; rebuild: (ts: Tensor[]) => object } {
  const tensors: Tensor[] = [];
  const walk = (v: unknown): unknown => {
    if (v instanceof tf.Tensor) {
      tensors.push(v);
      return new Slot(tensors.length - 1);
    }
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  const shape = walk(tree);
  const fill = (v: unknown, ts: Tensor[]): unknown => {
    if (v instanceof Slot) return ts[v.index];
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x, ts)]));
    return v;
  };
  return { tensors, rebuild: (ts) => fill(shape, ts) as object };
}

function layerBody(p: TransformerLayerParams, o: TransformerLayerOptions, inputs: TransformerLayerInputs): TransformerLayerOutputs {
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
