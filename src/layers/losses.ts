/** Losses with torch's conventions: mean over targets that are not ignored. */
import { tf, type Tensor } from '../backend/tf.ts';

/** HF and torch.nn.CrossEntropyLoss skip targets equal to −100; Megatron's sop loss uses −1. */
export const HF_IGNORE_INDEX = -100;

/**
 * Cross-entropy of logits [N, C] against integer targets [N], averaged over targets ≠ ignoreIndex
 * (torch: NaN when every target is ignored). The target's log-probability is picked with a one-hot
 * product rather than a gather, so the backward pass is a dense multiply.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, ignoreIndex: number): Tensor {
  // Each stage in its own tidy scope: over a real vocabulary every [N, C] temporary is tens of MB,
  // and without the scopes all of them would live until the model's forward ends.
  return tf.tidy(() => {
    const classes = logits.shape[logits.shape.length - 1];
    const flatTargets = tf.cast(targets.reshape([-1]), 'int32'); // [N]
    const kept = tf.notEqual(flatTargets, ignoreIndex); // [N] bool
    const keep = tf.cast(kept, 'float32');
    const logProbs = tf.tidy(() => tf.logSoftmax(logits.reshape([-1, classes]))); // [N, C]
    const picked = tf.tidy(() => {
      // Ignored targets become −1, which one-hots to all zeros, so they pick nothing.
      const safeTargets = tf.where(kept, flatTargets, tf.fill(flatTargets.shape, -1, 'int32'));
      // Cast rather than oneHot(..., 'float32'): tfjs-backend-wasm 4.22 returns all zeros for that dtype.
      const oneHot = tf.cast(tf.oneHot(safeTargets, classes), 'float32'); // [N, C]
      return tf.sum(tf.mul(oneHot, logProbs), 1); // [N]
    });
    return tf.div(tf.neg(tf.sum(tf.mul(picked, keep))), tf.sum(keep));
  });
}

/** A causal LM's loss: logits[:, :-1] against labels[:, 1:] (HF shifts inside the model), −100 ignored. */
export function nextTokenLoss(logits: Tensor, labels: Tensor): Tensor {
  const [batch, time, vocab] = logits.shape as [number, number, number];
  const shiftedLogits = tf.slice(logits, [0, 0, 0], [batch, time - 1, vocab]);
  const shiftedLabels = tf.slice(labels, [0, 1], [batch, time - 1]);
  return crossEntropy(shiftedLogits, shiftedLabels, HF_IGNORE_INDEX);
}
