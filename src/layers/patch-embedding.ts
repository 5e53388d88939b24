/**
 * ViT's patch embedding: a Conv2d whose stride equals its kernel (HF ViTPatchEmbeddings) cuts
 * the image into non-overlapping p×p patches and projects each one; that is a reshape of the
 * pixels into patch rows followed by one matrix product.
 */
import { tf, type Tensor } from '../backend/tf.ts';

export interface PatchEmbeddingParams {
  /** The Conv2d kernel, [C, p, p, O] (torch stores [O, C, p, p]; the weight map moves O last). */
  weight: Tensor;
  bias: Tensor; // [O]
}

/**
 * pixels [B, C, H, W] -> [B, (H/p)·(W/p), O], patches in row-major order as
 * conv(pixels).flatten(2).transpose(1, 2) gives them.
 */
export function patchEmbed(pixels: Tensor, p: PatchEmbeddingParams, patch: number): Tensor {
  const [batch, channels, height, width] = pixels.shape as [number, number, number, number];
  if (height % patch !== 0 || width % patch !== 0) throw new Error(`image ${height}×${width} is not a whole number of ${patch}×${patch} patches`);
  const rows = height / patch;
  const cols = width / patch;
  const out = p.weight.shape[3] as number;
  // Two rank-4 transposes rather than one rank-6 one (the wasm backend transposes rank ≤ 4 fastest):
  const a = pixels.reshape([batch * channels * rows, patch, cols, patch]).transpose([0, 2, 1, 3]); // [B·C·r, p, c, p] -> [B·C·r, c, p, p]
  const b = a.reshape([batch, channels, rows * cols, patch * patch]).transpose([0, 2, 1, 3]); // [B, C, r·c, p·p] -> [B, r·c, C, p·p]
  const patches = b.reshape([batch * rows * cols, channels * patch * patch]); // one row per patch, (C, i, j) order
  const kernel = p.weight.reshape([channels * patch * patch, out]); // [C,p,p,O] -> [C·p·p, O]
  return tf.add(tf.matMul(patches, kernel), p.bias).reshape([batch, rows * cols, out]); // [N, C·p·p] x [C·p·p, O] -> [B, r·c, O]
}
