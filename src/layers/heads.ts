/** Output heads shared by the models: LM logits over a (usually tied) embedding table, and BERT's pooler. */
import { tf, type Tensor } from '../backend/tf.ts';
import { linear, type LinearParams } from './linear.ts';

/** h·Eᵀ (+ bias): [B, T, H] x [V, H]ᵀ -> [B, T, V]. E is the word embedding when tied. */
export function lmLogits(hidden: Tensor, table: Tensor, bias?: Tensor): Tensor {
  const [batch, time, width] = hidden.shape;
  const vocab = table.shape[0];
  // table · hiddenᵀ, then transposed, rather than hidden · tableᵀ: as the left operand the table is
  // read in place, while as a transposed right operand it would be transposed and then packed by
  // XNNPACK — two copies of the table (2 × 98 MB at GPT-2 size) per call. Each logit is the same
  // dot product summed in the same order (bit-identical on wasm).
  let logits = tf.transpose(tf.matMul(table, hidden.reshape([batch * time, width]), false, true)); // ([V,H] x [N,H]ᵀ)ᵀ -> [N,V]
  if (bias) logits = tf.add(logits, bias);
  return logits.reshape([batch, time, vocab]);
}

/** tanh(dense(h[:, 0])): [B, T, H] -> [B, H]. */
export function pooler(hidden: Tensor, p: LinearParams): Tensor {
  const [batch, , width] = hidden.shape;
  const first = tf.slice(hidden, [0, 0, 0], [batch, 1, width]).reshape([batch, width]);
  return tf.tanh(linear(first, p));
}
