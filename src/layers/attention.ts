/**
 * Multi-head attention for self- and cross-attention, with an optional key/value cache.
 * The score scale is explicit: BERT and GPT-2 divide by √d_head, T5 does not scale at all.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { linear, type LinearParams } from './linear.ts';
import { tap, type TapSink } from './taps.ts';

export interface AttentionParams {
  q: LinearParams; // [H, nh·hd]
  k: LinearParams; // [Hkv, nh·hd]
  v: LinearParams; // [Hkv, nh·hd]
  o: LinearParams; // [nh·hd, H]
}

export interface AttentionOptions {
  heads: number;
  /** Divide scores by √d_head (BERT, GPT-2) or not (T5). */
  scaleScores: boolean;
  /** Additive bias broadcast to [B, nh, Tq, Tk]: masks, T5's position bias. */
  bias?: Tensor;
  /** Receives "scores" (the softmax input), "probs" and "out" (after the output projection). */
  tap?: TapSink;
}

/** Keys and values already projected and split into heads: [B, nh, Tk, hd] each. */
export interface KeyValue {
  k: Tensor;
  v: Tensor;
}

export interface AttentionResult {
  out: Tensor; // [B, Tq, H]
  probs: Tensor; // [B, nh, Tq, Tk]
  /** Keys/values this call attended over, for the next decoding step (self) or reuse (cross). */
  kv: KeyValue;
}

/** [B, T, nh·hd] -> [B, nh, T, hd] */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [batch, time, width] = x.shape;
  return x.reshape([batch, time, heads, width / heads]).transpose([0, 2, 1, 3]);
}

/** [B, nh, T, hd] -> [B, T, nh·hd] */
export function mergeHeads(x: Tensor): Tensor {
  const [batch, heads, time, headDim] = x.shape;
  return x.transpose([0, 2, 1, 3]).reshape([batch, time, heads * headDim]);
}

/** softmax(q·kᵀ [/√hd] + bias)·v over [B, nh, T, hd] tensors. */
export function scaledDotProduct(q: Tensor, k: Tensor, v: Tensor, scaleScores: boolean, bias?: Tensor, sink?: TapSink): { context: Tensor; probs: Tensor } {
  let scores = tf.matMul(q, k, false, true); // [B,nh,Tq,hd] x [B,nh,Tk,hd]ᵀ -> [B,nh,Tq,Tk]
  if (scaleScores) scores = tf.div(scores, Math.sqrt(q.shape[3] as number));
  if (bias) scores = tf.add(scores, bias);
  scores = tap(sink, 'scores', scores);
  const probs = tap(sink, 'probs', tf.softmax(scores)); // over Tk
  const context = tf.matMul(probs, v); // [B,nh,Tq,Tk] x [B,nh,Tk,hd] -> [B,nh,Tq,hd]
  return { context, probs };
}

/** Projects `source` to keys and values: [B, Tk, Hkv] -> 2 x [B, nh, Tk, hd]. */
export function projectKeyValue(source: Tensor, p: AttentionParams, heads: number): KeyValue {
  return { k: splitHeads(linear(source, p.k), heads), v: splitHeads(linear(source, p.v), heads) };
}

/**
 * Self-attention over x, appending x's keys/values to `past` when given (incremental decoding:
 * x holds only the new positions). The caller's bias must cover all Tpast + T keys.
 */
export function selfAttention(x: Tensor, p: AttentionParams, opts: AttentionOptions, past?: KeyValue): AttentionResult {
  const q = splitHeads(linear(x, p.q), opts.heads); // [B,T,H] -> [B,nh,T,hd]
  let kv = projectKeyValue(x, p, opts.heads);
  if (past) kv = { k: tf.concat([past.k, kv.k], 2), v: tf.concat([past.v, kv.v], 2) }; // [B,nh,Tpast+T,hd]
  return finish(q, kv, p, opts);
}

/**
 * Cross-attention from x to an encoder output. Pass `memory` (keys/values computed once per
 * encoder output with projectKeyValue) to reuse them across decoding steps.
 */
export function crossAttention(x: Tensor, encoderOut: Tensor | null, p: AttentionParams, opts: AttentionOptions, memory?: KeyValue): AttentionResult {
  const q = splitHeads(linear(x, p.q), opts.heads);
  const kv = memory ?? projectKeyValue(requireTensor(encoderOut), p, opts.heads);
  return finish(q, kv, p, opts);
}

function finish(q: Tensor, kv: KeyValue, p: AttentionParams, opts: AttentionOptions): AttentionResult {
  const { context, probs } = scaledDotProduct(q, kv.k, kv.v, opts.scaleScores, opts.bias, opts.tap);
  return { out: tap(opts.tap, 'out', linear(mergeHeads(context), p.o)), probs, kv };
}

function requireTensor(t: Tensor | null): Tensor {
  if (!t) throw new Error('crossAttention needs an encoder output or precomputed memory');
  return t;
}
