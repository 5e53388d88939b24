/**
 * The generation check: greedy decoding with and without the key/value cache on the initial and
 * final weights, against the reference's tokens and per-step logits (generation.safetensors
 * '<weights>.<cached|uncached>.{sequences,step_logits}', prompts 'prompt.*').
 */
import { basename } from 'node:path';
import { InputError } from '../errors.ts';
import type { Model } from '../models/model.ts';
import type { TensorRef } from '../weightmap/checkpoint.ts';
import { readSafetensors } from '../weightmap/readers/safetensors.ts';
import { greedyDecoderOnly, greedyEncoderDecoder, type Generated, type Prompt } from './generate.ts';
import { loadParams, type LoadOptions } from './load-model.ts';
import type { GenerationCase, GenerationVerdict, Weights } from './verdict.ts';

export interface GenerationRun {
  label: Weights;
  weightsPath: string;
  /**
   * The forward record of the same weights and its float64 twin: generation logits come from the
   * same head, so the reference's own error on its forward logits is the precision of its step
   * logits too, and the logit tolerance widens to k times it.
   */
  forward?: { reference: string; reference64: string };
}

export interface GenerationTolerance {
  atol: number;
  rtol: number;
  envelope?: { k: number };
}

/** The forward output that holds the LM head's logits, by the HF name every generating family uses. */
const LOGITS = 'logits';

export async function checkGeneration(model: Model, referenceFile: string, runs: readonly GenerationRun[], tol: GenerationTolerance, load: LoadOptions = {}): Promise<GenerationVerdict> {
  const g = model.generation;
  if (!g) throw new InputError(`model family ${model.family} does not generate`, { file: referenceFile });
  const ref = readSafetensors(referenceFile);
  const get = (name: string): TensorRef => {
    const t = ref.tensors.get(name);
    if (!t) throw new InputError('reference generation tensor missing', { file: referenceFile, tensor: name });
    return t;
  };
  const ids = get('prompt.input_ids');
  const prompt: Prompt = { batch: ids.shape[0], length: ids.shape[1], inputIds: ids.toInt32(), attentionMask: get('prompt.attention_mask').toInt32() };
  const cases: GenerationCase[] = [];
  let cachedEqualsUncached = true;
  let tokensMatchReference = true;
  let logitsWithinTolerance = true;
  let maxLogitDiff = 0;
  let maxLogitAtol = 0;
  const sources: string[] = [];

  for (const run of runs) {
    const widened = tol.envelope && run.forward ? logitNoise(run.forward.reference, run.forward.reference64) : undefined;
    const atol = widened ? Math.max(tol.atol, tol.envelope!.k * widened.noise) : tol.atol;
    if (widened && atol > tol.atol) sources.push(`${run.label}: ${tol.envelope!.k} × ${widened.noise.toExponential(2)} (${widened.source})`);
    maxLogitAtol = Math.max(maxLogitAtol, atol);
    const { params } = loadParams(model, run.weightsPath, load);
    const results: Record<'cached' | 'uncached', Generated> = { cached: emptyGenerated(), uncached: emptyGenerated() };
    try {
      for (const mode of ['cached', 'uncached'] as const) {
        const steps = get(`${run.label}.${mode}.step_logits`).shape[1];
        results[mode] = g.kind === 'decoder-only'
          ? await greedyDecoderOnly(g, params.get, prompt, steps, mode === 'cached')
          : await greedyEncoderDecoder(g, params.get, prompt, steps, mode === 'cached');
      }
    } finally {
      params.dispose();
    }
    const sameTokens = JSON.stringify(results.cached.sequences) === JSON.stringify(results.uncached.sequences);
    cachedEqualsUncached &&= sameTokens;
    for (const mode of ['cached', 'uncached'] as const) {
      const refSeq = rowsOf(get(`${run.label}.${mode}.sequences`));
      const refLogits = get(`${run.label}.${mode}.step_logits`);
      const ours = results[mode];
      const { maxAbsDiff: diff, close } = compareStepLogits(ours, refLogits, { atol, rtol: tol.rtol });
      const tokensMatch = JSON.stringify(ours.sequences) === JSON.stringify(refSeq);
      const pass = tokensMatch && close && sameTokens;
      tokensMatchReference &&= tokensMatch;
      logitsWithinTolerance &&= close;
      maxLogitDiff = Math.max(maxLogitDiff, diff);
      cases.push({ name: `${run.label}/${mode}`, cached: results.cached.sequences.flat(), uncached: results.uncached.sequences.flat(), reference: refSeq.flat(), maxLogitDiff: diff, logitAtol: atol, pass });
    }
  }
  return {
    pass: cases.length > 0 && cases.every((c) => c.pass),
    cachedEqualsUncached,
    tokensMatchReference,
    logitsWithinTolerance,
    matchesReference: tokensMatchReference && logitsWithinTolerance,
    maxLogitDiff,
    logitAtol: maxLogitAtol,
    ...(sources.length ? { logitEnvelope: sources.join('; ') } : {}),
    cases,
  };
}

/** max |logits32 − logits64| of the forward record: the reference's own error on its logits. */
function logitNoise(referenceFile: string, reference64File: string): { noise: number; source: string } | undefined {
  const l32 = readSafetensors(referenceFile).tensors.get(LOGITS);
  const l64 = readSafetensors(reference64File).tensors.get(LOGITS);
  if (!l32 || !l64?.toFloat64) return undefined;
  const a = l32.toFloat32();
  const b = l64.toFloat64();
  if (a.length !== b.length) throw new InputError('the float64 forward record has another logits shape', { file: reference64File, tensor: LOGITS, expected: `[${l32.shape.join(', ')}]`, actual: `[${l64.shape.join(', ')}]` });
  let noise = 0;
  for (let i = 0; i < a.length; i++) noise = Math.max(noise, Math.abs(a[i] - b[i]));
  return { noise, source: `${basename(reference64File)} ${LOGITS}` };
}

function emptyGenerated(): Generated {
  return { sequences: [], newTokens: [], stepLogits: [] };
}

function rowsOf(t: TensorRef): number[][] {
  const data = t.toInt32();
  const [rows, cols] = t.shape;
  return Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * cols, (r + 1) * cols)));
}

/** Every step's logits against the reference: max |ours − ref|, and whether all are within atol + rtol·|ref|. */
function compareStepLogits(ours: Generated, ref: TensorRef, tol: { atol: number; rtol: number }): { maxAbsDiff: number; close: boolean } {
  const [B, S, V] = ref.shape;
  const data = ref.toFloat32();
  let max = 0;
  let close = true;
  for (let b = 0; b < B; b++) {
    if ((ours.stepLogits[b]?.length ?? 0) !== S) return { maxAbsDiff: Number.POSITIVE_INFINITY, close: false };
    for (let s = 0; s < S; s++) {
      const row = ours.stepLogits[b][s];
      for (let v = 0; v < V; v++) {
        const r = data[(b * S + s) * V + v];
        const d = Math.abs(row[v] - r);
        if (!(d <= max)) max = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
        if (!(d <= tol.atol + tol.rtol * Math.abs(r))) close = false;
      }
    }
  }
  return { maxAbsDiff: max, close };
}
