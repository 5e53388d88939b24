/**
 * Will a training run fit? An estimate made from the model's parameter specs and one step's batch,
 * before any weight is loaded, against what the backend can hold:
 *   parameters + gradients (+ Adam's two moments when the optimizer runs on the device) + the
 *   activations a step keeps for its backward pass, on the backend;
 *   Adam's two moments (host optimizer), on the host.
 * Activations are counted per layer from the model's widths and the batch's tokens: every layer's
 * (stored) or one layer's plus each layer's input (recomputed, see transformerLayer); and the
 * transients of the largest matrix (its transposed or copied operand, XNNPACK's packed copy, a tied
 * embedding's gradient summed from two parts). The constants were fitted to the wasm heap's
 * high-water mark on a 110M-parameter GPT-2 (12 × 768, vocabulary 32000) at 128 tokens, stored
 * and recomputed; this is an estimate, stated as one, and the plan leaves a tenth of the limit
 * free for what it does not count (the heap's fragmentation).
 *
 * A run that does not fit stored but fits recomputed is recomputed; one that fits neither is
 * refused (exit 2) with the breakdown and what would make it fit.
 */
import os from 'node:os';
import { InputError } from '../../errors.ts';
import type { Model } from '../../models/model.ts';
import type { HostBatch } from '../batch-io.ts';
import type { OptimizerPlace } from './loop.ts';

/** tfjs-backend-wasm's heap cannot grow past this (wasm32; emscripten's getHeapMax). */
export const WASM_HEAP_LIMIT = 4294901760;

/** Floats each layer keeps per token: per unit of width, of MLP width, and per attention head and key. */
const PER_TOKEN = { hidden: 34, ffn: 21, headKeys: 8 };
/** Floats the LM/classification head keeps per token and output class (logits, log-softmax, one-hot, their gradients). */
const HEAD_PER_CLASS = 12;
/** Copies of the largest parameter alive at once at the worst moment of a step. */
const LARGEST_PARAM_COPIES = 4;
/** …and while the device optimizer updates it (new m, v, p and two temporaries). */
const DEVICE_UPDATE_COPIES = 5;
/** Share of a backend's limit the plan fills. */
const HEADROOM = 0.9;

export interface MemoryEstimate {
  backend: string;
  parameters: number;
  gradients: number;
  moments: number;
  momentsOn: 'host' | 'device';
  activations: number;
  recompute: boolean;
  /** Bytes on the backend, and the backend's limit (null: it does not say). */
  device: number;
  deviceLimit: number | null;
  /** Bytes on the host beyond the backend's (the host optimizer's moments), and the machine's memory. */
  host: number;
  hostLimit: number;
}

export interface ModelShape {
  params: number;
  /** Elements of the largest parameter (the word embedding, usually). */
  largestParam: number;
  layers: number;
  hidden: number;
  ffn: number;
  heads: number;
  classes: number;
  tokens: number;
  keys: number;
}

/** Widths read off the parameter specs (norm weights are [hidden], fc_in is [hidden, ffn]), tokens off the batch. */
export function modelShape(model: Model, batch: HostBatch): ModelShape {
  const specs = model.specs;
  const params = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const layerIds = new Set(specs.map((s) => /^(.*layers\.\d+)\./.exec(s.name)?.[1]).filter((x): x is string => x !== undefined));
  const fcIn = specs.find((s) => /mlp\.fc_in\.weight$/.test(s.name));
  const word = specs.find((s) => s.name === 'embeddings.word' || s.name === 'shared');
  const head = specs.find((s) => /^(lm_head|classifier)(\.weight)?$/.test(s.name));
  const hidden = fcIn?.shape[0] ?? word?.shape[1] ?? 0;
  const config = model.config as { heads?: number };
  const ids = batch.input_ids?.shape;
  const labels = batch.labels?.shape;
  const position = specs.find((s) => s.name === 'embeddings.position');
  const rows = (ids ?? labels ?? Object.values(batch)[0]?.shape ?? [1])[0];
  // Sequence models: tokens from input_ids (T5 adds its decoder's labels); ViT: its position table's rows (patches + CLS).
  const seq = ids ? ids[1] : position ? position.shape[position.shape.length - 2] : 1;
  const decoder = model.family.startsWith('t5') && labels ? labels[1] : 0;
  return {
    params,
    largestParam: Math.max(0, ...specs.map((s) => s.shape.reduce((a, b) => a * b, 1))),
    layers: layerIds.size,
    hidden,
    ffn: fcIn?.shape[1] ?? 4 * hidden,
    heads: config.heads ?? 1,
    classes: head?.shape[0] ?? word?.shape[0] ?? 0,
    tokens: rows * (seq + decoder),
    keys: Math.max(seq, decoder),
  };
}

export function estimateTraining(shape: ModelShape, backend: string, optimizer: OptimizerPlace, recompute: boolean): MemoryEstimate {
  const f = 4;
  const parameters = shape.params * f;
  const perLayer = shape.tokens * (PER_TOKEN.hidden * shape.hidden + PER_TOKEN.ffn * shape.ffn + PER_TOKEN.headKeys * shape.heads * shape.keys) * f;
  const layerInputs = shape.tokens * shape.hidden * f;
  const activations = (recompute ? perLayer + shape.layers * layerInputs : shape.layers * perLayer)
    + shape.tokens * shape.classes * HEAD_PER_CLASS * f
    + LARGEST_PARAM_COPIES * shape.largestParam * f;
  const moments = 2 * parameters;
  const momentsOnDevice = optimizer === 'device';
  return {
    backend,
    parameters,
    gradients: parameters,
    moments,
    momentsOn: momentsOnDevice ? 'device' : 'host',
    activations,
    recompute,
    device: 2 * parameters + activations + (momentsOnDevice ? moments + DEVICE_UPDATE_COPIES * shape.largestParam * f : 0),
    deviceLimit: backend === 'wasm' ? WASM_HEAP_LIMIT : null,
    host: momentsOnDevice ? 0 : moments,
    hostLimit: os.totalmem(),
  };
}

export function fits(e: MemoryEstimate): boolean {
  const onHostToo = e.deviceLimit === null ? e.device : 0; // a backend without its own limit lives in host memory (cpu, tensorflow) or says nothing (GPU)
  return (e.deviceLimit === null || e.device <= HEADROOM * e.deviceLimit) && e.host + onHostToo <= HEADROOM * e.hostLimit;
}

/** The plan for a run: recompute when only that fits (or when asked); refuse (InputError) when nothing fits. */
export function planTraining(shape: ModelShape, backend: string, optimizer: OptimizerPlace, askedRecompute: boolean, file: string): MemoryEstimate {
  const stored = estimateTraining(shape, backend, optimizer, askedRecompute);
  if (fits(stored)) return stored;
  const recomputed = estimateTraining(shape, backend, optimizer, true);
  if (fits(recomputed)) return recomputed;
  throw new InputError(`the model does not fit the ${backend} backend for training: ${describeEstimate(recomputed)}; ${advice(recomputed)}`, {
    file,
    expected: recomputed.deviceLimit !== null && recomputed.device > recomputed.deviceLimit ? `≤ ${mib(recomputed.deviceLimit)} on ${backend}` : `≤ ${mib(recomputed.hostLimit)} of host memory`,
    actual: `${mib(recomputed.device)} on ${backend}, ${mib(recomputed.host)} on the host`,
  });
}

function advice(e: MemoryEstimate): string {
  const tips = ['a smaller batch (fewer rows per step in batches.safetensors)'];
  if (e.backend === 'wasm') tips.unshift('a GPU backend (--backend webgpu or tensorflow-gpu), whose memory is not capped at 4 GiB');
  if (e.momentsOn === 'device' && e.deviceLimit !== null) tips.push('--optimizer host (keeps Adam\'s moments in host memory)');
  return `try ${tips.join('; or ')}`;
}

export function describeEstimate(e: MemoryEstimate): string {
  const limit = e.deviceLimit === null ? 'no stated limit' : `limit ${mib(e.deviceLimit)}`;
  return `parameters ${mib(e.parameters)} + gradients ${mib(e.gradients)}${e.momentsOn === 'device' ? ` + Adam moments ${mib(e.moments)}` : ''} + activations ~${mib(e.activations)}${e.recompute ? ' (layers recomputed)' : ''} = ~${mib(e.device)} on ${e.backend} (${limit})${e.momentsOn === 'host' ? `; Adam moments ${mib(e.moments)} on the host` : ''}`;
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}
