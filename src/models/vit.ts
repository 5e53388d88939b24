/**
 * ViTForImageClassification (HF 4.33) from the shared layers: patch embedding (a stride = kernel
 * convolution as reshape + matmul), a learned [CLS] token and learned positions, pre-LN blocks
 * (LayerNorm eps from the config, exact GELU, biased q/k/v), a final LayerNorm, and a classifier
 * on the [CLS] position — no pooler. Single-label classification loss.
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { InputError } from '../errors.ts';
import type { Activation } from '../layers/activations.ts';
import { linear } from '../layers/linear.ts';
import { crossEntropy, HF_IGNORE_INDEX } from '../layers/losses.ts';
import { layerNorm } from '../layers/norm.ts';
import { patchEmbed } from '../layers/patch-embedding.ts';
import { tap } from '../layers/taps.ts';
import { transformerLayer } from '../layers/transformer-layer.ts';
import { blockParams, blockSpecs, linearParams, linearSpecs, normSpecs } from './blocks.ts';
import { blockOptions, type Batch, type ForwardOptions, type ForwardResult, type ModelBody } from './model.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

export interface VitConfig {
  /** [height, width] in pixels. */
  imageSize: [number, number];
  /** [height, width] of a patch: the convolution's kernel and stride. */
  patchSize: [number, number];
  channels: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  layerNormEps: number;
  activation: Activation;
  numLabels: number;
}

/** google/vit-base-patch16-224 sizes. */
export function vitBase(): VitConfig {
  return { imageSize: [224, 224], patchSize: [16, 16], channels: 3, hidden: 768, layers: 12, heads: 12, intermediate: 3072, layerNormEps: 1e-12, activation: 'gelu', numLabels: 1000 };
}

export function patchCount(c: VitConfig): number {
  return (c.imageSize[0] / c.patchSize[0]) * (c.imageSize[1] / c.patchSize[1]);
}

const BLOCK = { bias: true, gated: false, norm: 'layer' as const, cross: false };

export function vitParamSpecs(c: VitConfig): ParamSpec[] {
  const [ph, pw] = c.patchSize;
  const specs: ParamSpec[] = [
    // HF's shapes: cls_token [1,1,H], position_embeddings [1, 1 + patches, H].
    { name: 'embeddings.cls', shape: [1, 1, c.hidden] },
    { name: 'embeddings.position', shape: [1, patchCount(c) + 1, c.hidden] },
    { name: 'embeddings.patch.weight', shape: [c.channels, ph, pw, c.hidden] },
    { name: 'embeddings.patch.bias', shape: [c.hidden] },
  ];
  for (let i = 0; i < c.layers; i++) specs.push(...blockSpecs(`layers.${i}`, { ...BLOCK, hidden: c.hidden, inner: c.hidden, ffn: c.intermediate }));
  specs.push(...normSpecs('final_norm', c.hidden, 'layer'), ...linearSpecs('classifier', c.hidden, c.numLabels, true));
  return specs;
}

/** batch: pixel_values [B, C, H, W] float32; labels [B] (class ids). */
export function vitForward(c: VitConfig, P: ParamLookup, batch: Batch, options: ForwardOptions): ForwardResult {
  const pixels = batch.pixel_values;
  if (!pixels) throw new Error('batch has no pixel_values');
  const [batchSize, channels, height, width] = pixels.shape as [number, number, number, number];
  if (pixels.shape.length !== 4 || channels !== c.channels || height !== c.imageSize[0] || width !== c.imageSize[1]) {
    // HF refuses other sizes too unless asked to interpolate the position embeddings.
    throw new InputError('pixel_values do not match the configured image', { tensor: 'pixel_values', expected: `[B, ${c.channels}, ${c.imageSize[0]}, ${c.imageSize[1]}]`, actual: `[${pixels.shape.join(', ')}]` });
  }
  const outputs: Record<string, Tensor> = {};
  const sink = options.tap;

  const patches = tap(sink, 'patches', patchEmbed(pixels, { weight: P('embeddings.patch.weight'), bias: P('embeddings.patch.bias') }, c.patchSize)); // [B,N,H]
  const cls = tf.tile(P('embeddings.cls'), [batchSize, 1, 1]); // [1,1,H] -> [B,1,H]
  let x = tap(sink, 'embeddings', tf.add(tf.concat([cls, patches], 1), P('embeddings.position'))); // [B,1+N,H] + [1,1+N,H]

  const layerOpts = { heads: c.heads, scaleScores: true, placement: 'pre' as const, norm: { kind: 'layer' as const, eps: c.layerNormEps }, activation: c.activation };
  for (let i = 0; i < c.layers; i++) {
    if (options.taps) outputs[`hidden_states.${i}`] = x;
    const r = transformerLayer(blockParams(P, `layers.${i}`, BLOCK), blockOptions(options, `layer.${i}`, layerOpts), { x });
    x = r.out;
    if (options.taps) outputs[`attentions.${i}`] = r.selfProbs;
  }
  // HF's hidden_states end with the raw last layer output; the final norm is last_hidden_state.
  if (options.taps) outputs[`hidden_states.${c.layers}`] = x;
  const normed = tap(sink, 'final_norm', layerNorm(x, { weight: P('final_norm.weight'), bias: P('final_norm.bias') }, c.layerNormEps));
  if (options.taps) outputs.last_hidden_state = normed;
  const first = tf.slice(normed, [0, 0, 0], [batchSize, 1, c.hidden]).reshape([batchSize, c.hidden]); // [CLS]: [B,1+N,H] -> [B,H]
  const logits = tap(sink, 'logits', linear(first, linearParams(P, 'classifier', true))); // [B, labels]
  outputs.logits = logits;

  let loss: Tensor = tf.scalar(Number.NaN);
  if (batch.labels) {
    loss = crossEntropy(logits, batch.labels, HF_IGNORE_INDEX);
    outputs.loss = loss;
  }
  return { loss, parts: {}, outputs };
}

export function vitModel(config: VitConfig): ModelBody<VitConfig> {
  return {
    config,
    specs: vitParamSpecs(config),
    inputNames: ['pixel_values', 'labels'],
    forward: (P, batch, options) => vitForward(config, P, batch, options),
    layerOutputOrder: () => [...Array.from({ length: config.layers + 1 }, (_, i) => `hidden_states.${i}`), 'last_hidden_state'],
    paddedAxes: [],
  };
}
