/**
 * Activations by their HuggingFace names (transformers/activations.py), so a config's
 * `hidden_act` selects the exact formula the reference used.
 */
import { tf, type Tensor } from '../backend/tf.ts';

export type Activation = 'gelu' | 'gelu_new' | 'gelu_fast' | 'gelu_pytorch_tanh' | 'relu' | 'quick_gelu' | 'tanh' | 'silu' | 'swish';

export const ACTIVATIONS: readonly Activation[] = ['gelu', 'gelu_new', 'gelu_fast', 'gelu_pytorch_tanh', 'relu', 'quick_gelu', 'tanh', 'silu', 'swish'];

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activation(x: Tensor, kind: Activation): Tensor {
  switch (kind) {
    case 'gelu': // exact: ½x(1 + erf(x/√2))
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case 'gelu_new': // tanh form: ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    case 'gelu_pytorch_tanh':
      return tanhGelu(x, SQRT_2_OVER_PI);
    case 'gelu_fast': // the same with the constant rounded as HF writes it
      return tanhGelu(x, 0.7978845608);
    case 'quick_gelu': // x·σ(1.702x)
      return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'silu': // x·σ(x) (LLaMA's SwiGLU gate); HF maps "swish" to the same nn.SiLU
    case 'swish':
      return silu(x);
  }
}

/**
 * x / (1 + e^−x), in the order torch's SiLU kernel evaluates it, with torch's backward
 * dy · σ(x) · (1 + x · (1 − σ(x))). Differentiating the division itself would give 0 · ∞ = NaN
 * where e^−x overflows (x < −88); this form gives 0 there, as torch does.
 */
const silu = tf.customGrad((...args: Array<Tensor | tf.GradSaveFunc>) => {
  const [x, save] = args as [Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.div(x, tf.add(1, tf.exp(tf.neg(x)))),
    gradFunc: (dy: Tensor, saved: Tensor[]) => {
      const [input] = saved;
      const s = tf.sigmoid(input);
      return [tf.mul(dy, tf.mul(s, tf.add(1, tf.mul(input, tf.sub(1, s)))))];
    },
  };
}) as (x: Tensor) => Tensor;

function tanhGelu(x: Tensor, c: number): Tensor {
  // torch evaluates pow(x, 3.0) as x·x·x; tf.pow would also build an unused exponent gradient.
  const cube = tf.mul(tf.mul(x, x), x);
  const inner = tf.mul(c, tf.add(x, tf.mul(0.044715, cube)));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}
