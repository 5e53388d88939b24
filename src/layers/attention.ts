/**
 * Multi-head attention for self- and cross-attention, with an optional key/value cache,
 * grouped-query attention (fewer key/value heads than query heads) and rotary positions.
 * The score scale is explicit: BERT, GPT-2 and LLaMA divide by √d_head, T5 does not scale at all.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { linear, type LinearParams } from './linear.ts';
import { applyRotary, type RotaryAngles } from './rotary.ts';
import { tap, type TapSink } from './taps.ts';

export interface AttentionParams {
  q: LinearParams; // [H, nh·hd]
  k: LinearParams; // [Hkv, nkv·hd]
  v: LinearParams; // [Hkv, nkv·hd]
  o: LinearParams; // [nh·hd, H]
}

export interface AttentionOptions {
  heads: number;
  /**
   * Key/value heads (grouped-query attention, HF num_key_value_heads); default `heads`. Query
   * head j reads key/value head ⌊j / (heads / kvHeads)⌋, HF's repeat_kv.
   */
  kvHeads?: number;
  /** Divide scores by √d_head (BERT, GPT-2, LLaMA) or not (T5). */
  scaleScores: boolean;
  /** Additive bias broadcast to [B, nh, Tq, Tk]: masks, T5's position bias. */
  bias?: Tensor;
  /** Rotary angles at this call's positions (self-attention): rotate q and the new k before the cache. */
  rotary?: RotaryAngles;
  /** Receives "scores" (the softmax input), "probs" and "out" (after the output projection). */
  tap?: TapSink;
}

/** Keys and values already projected and split into heads: [B, nkv, Tk, hd] each. */
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

/**
 * softmax(q·kᵀ [/√hd] + bias)·v for q [B, nh, Tq, hd] and k, v [B, nkv, Tk, hd], nkv dividing nh.
 * With nkv < nh (grouped-query attention) the g = nh/nkv query heads of a group are folded into
 * the rows of their one key/value head: the same dot products as HF's repeat_kv, without copying
 * keys and values g times.
 */
export function scaledDotProduct(q: Tensor, k: Tensor, v: Tensor, scaleScores: boolean, bias?: Tensor, sink?: TapSink): { context: Tensor; probs: Tensor } {
  const [batch, heads, queries, headDim] = q.shape as [number, number, number, number];
  const kvHeads = k.shape[1] as number;
  const keys = k.shape[2] as number;
  if (heads % kvHeads !== 0) throw new Error(`${heads} query heads cannot share ${kvHeads} key/value heads`);
  const groups = heads / kvHeads;
  const grouped = (t: Tensor, width: number) => (groups === 1 ? t : t.reshape([batch, kvHeads, groups * queries, width])); // [B,nh,Tq,w] -> [B,nkv,g·Tq,w]
  const perHead = (t: Tensor, width: number) => (groups === 1 ? t : t.reshape([batch, heads, queries, width])); // [B,nkv,g·Tq,w] -> [B,nh,Tq,w]
  let scores = perHead(tf.matMul(grouped(q, headDim), k, false, true), keys); // [B,nkv,g·Tq,hd] x [B,nkv,Tk,hd]ᵀ -> [B,nh,Tq,Tk]
  if (scaleScores) scores = tf.div(scores, Math.sqrt(headDim));
  if (bias) scores = tf.add(scores, bias);
  scores = tap(sink, 'scores', scores);
  const probs = tap(sink, 'probs', tf.softmax(scores)); // over Tk
  const context = perHead(tf.matMul(grouped(probs, keys), v), headDim); // [B,nkv,g·Tq,Tk] x [B,nkv,Tk,hd] -> [B,nh,Tq,hd]
  return { context, probs };
}

/** Projects `source` to keys and values: [B, Tk, Hkv] -> 2 x [B, nkv, Tk, hd]. */
export function projectKeyValue(source: Tensor, p: AttentionParams, kvHeads: number): KeyValue {
  return { k: splitHeads(linear(source, p.k), kvHeads), v: splitHeads(linear(source, p.v), kvHeads) };
}

/**
 * Self-attention over x, appending x's keys/values to `past` when given (incremental decoding:
 * x holds only the new positions). The caller's bias must cover all Tpast + T keys; rotary
 * angles, when given, are those of x's own T positions.
 */
export function selfAttention(x: Tensor, p: AttentionParams, opts: AttentionOptions, past?: KeyValue): AttentionResult {
  let q = splitHeads(linear(x, p.q), opts.heads); // [B,T,H] -> [B,nh,T,hd]
  let kv = projectKeyValue(x, p, opts.kvHeads ?? opts.heads); // 2 x [B,nkv,T,hd]
  if (opts.rotary) {
    q = applyRotary(q, opts.rotary);
    kv = { k: applyRotary(kv.k, opts.rotary), v: kv.v };
  }
  if (past) kv = { k: tf.concat([past.k, kv.k], 2), v: tf.concat([past.v, kv.v], 2) }; // [B,nkv,Tpast+T,hd]
  return finish(q, kv, p, opts);
}

/**
 * Cross-attention from x to an encoder output. Pass `memory` (keys/values computed once per
 * encoder output with projectKeyValue) to reuse them across decoding steps.
 */
export function crossAttention(x: Tensor, encoderOut: Tensor | null, p: AttentionParams, opts: AttentionOptions, memory?: KeyValue): AttentionResult {
  const q = splitHeads(linear(x, p.q), opts.heads);
  const kv = memory ?? projectKeyValue(requireTensor(encoderOut), p, opts.kvHeads ?? opts.heads);
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
