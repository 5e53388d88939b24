/**
 * y = x·W + b with W stored [in, out] (the TF.js Dense layout). torch's nn.Linear stores [out, in]:
 * the weight maps transpose once at load, so the hot path never does.
 */
import { tf, type Tensor } from '../backend/tf.ts';

export interface LinearParams {
  weight: Tensor; // [in, out]
  bias?: Tensor; // [out]
}

export function linear(x: Tensor, p: LinearParams): Tensor {
  const inDim = x.shape[x.shape.length - 1] as number;
  const outDim = p.weight.shape[1] as number;
  const lead = x.shape.slice(0, -1);
  const flat = x.reshape([-1, inDim]); // [..., in] -> [N, in]
  let y = tf.matMul(flat, p.weight); // [N, in] x [in, out] -> [N, out]
  if (p.bias) y = tf.add(y, p.bias);
  return y.reshape([...lead, outDim]);
}
