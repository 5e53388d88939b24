/**
 * ViT's patch embedding: a Conv2d whose stride equals its kernel (HF ViTPatchEmbeddings) cuts
 * the image into non-overlapping ph×pw patches and projects each one; that is a reshape of the
 * pixels into patch rows followed by one matrix product.
 */
import { tf, type Tensor } from '../backend/tf.ts';

export interface PatchEmbeddingParams {
  /** The Conv2d kernel, [C, ph, pw, O] (torch stores [O, C, ph, pw]; the weight map moves O last). */
  weight: Tensor;
  bias: Tensor; // [O]
}

/**
 * pixels [B, C, H, W] -> [B, (H/ph)·(W/pw), O], patches in row-major order as
 * conv(pixels).flatten(2).transpose(1, 2) gives them; `patch` is the kernel (= stride) [ph, pw].
 */
export function patchEmbed(pixels: Tensor, p: PatchEmbeddingParams, patch: readonly [number, number]): Tensor {
  const [batch, channels, height, width] = pixels.shape as [number, number, number, number];
  const [ph, pw] = patch;
  if (height % ph !== 0 || width % pw !== 0) throw new Error(`image ${height}×${width} is not a whole number of ${ph}×${pw} patches`);
  const rows = height / ph;
  const cols = width / pw;
  const out = p.weight.shape[3] as number;
  // Two rank-4 transposes rather than one rank-6 one (the wasm backend transposes rank ≤ 4 fastest):
  const a = pixels.reshape([batch * channels * rows, ph, cols, pw]).transpose([0, 2, 1, 3]); // [B·C·r, ph, c, pw] -> [B·C·r, c, ph, pw]
  const b = a.reshape([batch, channels, rows * cols, ph * pw]).transpose([0, 2, 1, 3]); // [B, C, r·c, ph·pw] -> [B, r·c, C, ph·pw]
  const patches = b.reshape([batch * rows * cols, channels * ph * pw]); // one row per patch, (C, i, j) order
  const kernel = p.weight.reshape([channels * ph * pw, out]); // [C,ph,pw,O] -> [C·ph·pw, O]
  return tf.add(tf.matMul(patches, kernel), p.bias).reshape([batch, rows * cols, out]); // [N, C·ph·pw] x [C·ph·pw, O] -> [B, r·c, O]
}
