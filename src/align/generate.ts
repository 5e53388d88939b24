/**
 * Greedy generation as HF 4.30's greedy_search does it (no logits processors, no EOS stop):
 * each step takes logits[:, -1], appends the first argmax. With the cache, the prompt is run
 * once and every later step feeds one token; without it, every step recomputes everything.
 * Decoder-only prompts may be left-padded: positions are cumsum(mask) − 1, padding at 1 (HF
 * GPT2LMHeadModel.prepare_inputs_for_generation), and the mask grows by a 1 per step.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import type { DecoderOnlyGeneration, EncoderDecoderGeneration } from '../models/model.ts';
import type { ParamLookup } from '../models/params.ts';
import type { KeyValue } from '../layers/attention.ts';

export interface Prompt {
  batch: number;
  length: number;
  inputIds: Int32Array; // [B, T]
  attentionMask: Int32Array; // [B, T]
}

export interface Generated {
  /** Prompt (decoder-only) or decoder start token (encoder-decoder) followed by the new tokens, [B][…]. */
  sequences: number[][];
  newTokens: number[][];
  /** logits[:, -1, :] of the forward that chose each new token: [B][step] -> Float32Array(V). */
  stepLogits: Float32Array[][];
}

export async function greedyDecoderOnly(g: DecoderOnlyGeneration, P: ParamLookup, prompt: Prompt, maxNewTokens: number, useCache: boolean): Promise<Generated> {
  const B = prompt.batch;
  const ids: number[][] = Array.from({ length: B }, (_, b) => Array.from(prompt.inputIds.subarray(b * prompt.length, (b + 1) * prompt.length)));
  const mask: number[][] = Array.from({ length: B }, (_, b) => Array.from(prompt.attentionMask.subarray(b * prompt.length, (b + 1) * prompt.length)));
  const stepLogits: Float32Array[][] = Array.from({ length: B }, () => []);
  const newTokens: number[][] = Array.from({ length: B }, () => []);
  let cache: KeyValue[] | undefined;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const T = ids[0].length;
      const positions = mask.map(positionsFromMask);
      const feedFrom = useCache && cache ? T - 1 : 0;
      const result = scoped(() => {
        const r = g.step(P, {
          inputIds: tf.tensor2d(ids.map((row) => row.slice(feedFrom)), [B, T - feedFrom], 'int32'),
          attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
          positionIds: tf.tensor2d(positions.map((row) => row.slice(feedFrom)), [B, T - feedFrom], 'int32'),
        }, cache);
        const t = r.logits.shape[1] as number;
        const last = tf.slice(r.logits, [0, t - 1, 0], [B, 1, r.logits.shape[2] as number]);
        const kept = useCache ? (r.cache as KeyValue[]).map((kv) => ({ k: tf.keep(kv.k), v: tf.keep(kv.v) })) : undefined;
        return { last: tf.keep(last), kept };
      });
      disposeCache(cache);
      cache = result.kept;
      appendArgmax(await readAndDispose(result.last), B, ids, newTokens, stepLogits);
      mask.forEach((row) => row.push(1));
    }
  } finally {
    disposeCache(cache);
  }
  return { sequences: ids, newTokens, stepLogits };
}

export async function greedyEncoderDecoder(g: EncoderDecoderGeneration, P: ParamLookup, prompt: Prompt, maxNewTokens: number, useCache: boolean): Promise<Generated> {
  const B = prompt.batch;
  const ids: number[][] = Array.from({ length: B }, () => [g.decoderStartTokenId]);
  const stepLogits: Float32Array[][] = Array.from({ length: B }, () => []);
  const newTokens: number[][] = Array.from({ length: B }, () => []);
  const encoderMask = tf.tensor2d(prompt.attentionMask, [B, prompt.length], 'int32');
  const encoderOut = tf.tidy(() => g.encode(P, tf.tensor2d(prompt.inputIds, [B, prompt.length], 'int32'), encoderMask));
  let cache: unknown;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const T = ids[0].length;
      const feedFrom = useCache && cache ? T - 1 : 0;
      const result = scoped(() => {
        const r = g.step(P, { decoderIds: tf.tensor2d(ids.map((row) => row.slice(feedFrom)), [B, T - feedFrom], 'int32'), encoderOut, encoderMask }, cache);
        const t = r.logits.shape[1] as number;
        const last = tf.slice(r.logits, [0, t - 1, 0], [B, 1, r.logits.shape[2] as number]);
        return { last: tf.keep(last), kept: useCache ? keepAll(r.cache) : undefined };
      });
      disposeReplaced(cache, result.kept);
      cache = result.kept;
      appendArgmax(await readAndDispose(result.last), B, ids, newTokens, stepLogits);
    }
  } finally {
    disposeAll(cache);
    encoderOut.dispose();
    encoderMask.dispose();
  }
  return { sequences: ids, newTokens, stepLogits };
}

/** The step's last-position logits on the host; the device tensor is released either way. */
async function readAndDispose(t: Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

/** tf.tidy for a function returning tensors it has kept itself (tidy cannot span an await). */
function scoped<T>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}

/** HF: position_ids = cumsum(mask) − 1, with padded positions set to 1. */
export function positionsFromMask(mask: readonly number[]): number[] {
  let seen = 0;
  return mask.map((m) => {
    seen += m;
    return m === 0 ? 1 : seen - 1;
  });
}

/** torch.argmax: the first index of the maximum. */
export function firstArgmax(values: Float32Array, from: number, to: number): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (values[i] > values[best]) best = i;
  return best - from;
}

function appendArgmax(last: Float32Array, B: number, ids: number[][], newTokens: number[][], stepLogits: Float32Array[][]): void {
  const V = last.length / B;
  for (let b = 0; b < B; b++) {
    const next = firstArgmax(last, b * V, (b + 1) * V);
    ids[b].push(next);
    newTokens[b].push(next);
    stepLogits[b].push(last.slice(b * V, (b + 1) * V));
  }
}

function disposeCache(cache: KeyValue[] | undefined): void {
  for (const kv of cache ?? []) {
    kv.k.dispose();
    kv.v.dispose();
  }
}

/** Keeps (or disposes) every tensor inside a cache of any nesting. */
function keepAll<T>(x: T): T {
  visit(x, (t) => tf.keep(t));
  return x;
}

function disposeAll(x: unknown): void {
  visit(x, (t) => t.dispose());
}

/** Disposes the tensors of `old` that `next` no longer holds (cross-attention memory carries over). */
function disposeReplaced(old: unknown, next: unknown): void {
  const kept = new Set<Tensor>();
  visit(next, (t) => kept.add(t));
  visit(old, (t) => {
    if (!kept.has(t)) t.dispose();
  });
}

function visit(x: unknown, f: (t: Tensor) => void): void {
  if (x instanceof tf.Tensor) f(x);
  else if (Array.isArray(x)) x.forEach((v) => visit(v, f));
  else if (x && typeof x === 'object') Object.values(x).forEach((v) => visit(v, f));
}
