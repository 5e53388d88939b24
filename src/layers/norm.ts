/**
 * LayerNorm and RMS norm, with eps always given by the caller: TF.js defaults LayerNorm eps to
 * 1e-3, BERT uses 1e-12, GPT-2 1e-5, T5 1e-6, and the difference shows in the first forward.
 */
import { tf, type Tensor } from '../backend/tf.ts';

export interface LayerNormParams {
  weight: Tensor; // [H]
  bias: Tensor; // [H]
}

/** torch.nn.LayerNorm over the last axis: biased variance, (x − mean)·rsqrt(var + eps)·w + b. */
export function layerNorm(x: Tensor, p: LayerNormParams, eps: number): Tensor {
  const axis = x.shape.length - 1;
  const mean = tf.mean(x, axis, true); // [..., 1]
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), axis, true); // [..., 1]
  const normed = tf.mul(centered, reciprocalSqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, p.weight), p.bias);
}

/**
 * T5LayerNorm and LlamaRMSNorm (the same float32 computation in HF: x·rsqrt(mean(x²) + eps),
 * then the weight): no mean subtraction, no bias.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const axis = x.shape.length - 1;
  const meanSquare = tf.mean(tf.square(x), axis, true); // [..., 1]
  return tf.mul(weight, tf.mul(x, reciprocalSqrt(tf.add(meanSquare, eps))));
}

/**
 * 1/√x as torch's CPU kernels compute it (a correctly rounded sqrt, then a division): tfjs-wasm's
 * rsqrt is up to 1.5 ulp off, which shows up in logits scaled by a large head.
 */
function reciprocalSqrt(x: Tensor): Tensor {
  return tf.div(1, tf.sqrt(x));
}
