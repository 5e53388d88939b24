/**
 * The position-wise feed-forward block: fc_out(act(fc_in(x))), or the gated form
 * fc_out(act(fc_gate(x)) ⊙ fc_in(x)) of T5 v1.1 (wi_0 = gate, wi_1 = in).
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { activation, type Activation } from './activations.ts';
import { linear, type LinearParams } from './linear.ts';

export interface MlpParams {
  fcIn: LinearParams; // [H, F]
  fcOut: LinearParams; // [F, H]
  /** Present for gated MLPs. */
  fcGate?: LinearParams; // [H, F]
}

export function mlp(x: Tensor, p: MlpParams, act: Activation): Tensor {
  const hidden = p.fcGate
    ? tf.mul(activation(linear(x, p.fcGate), act), linear(x, p.fcIn)) // [B,T,F]
    : activation(linear(x, p.fcIn), act); // [B,T,F]
  return linear(hidden, p.fcOut); // [B,T,F] -> [B,T,H]
}
