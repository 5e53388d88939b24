/**
 * The position-wise feed-forward block: fc_out(act(fc_in(x))), or the gated form
 * fc_out(act(fc_gate(x)) ⊙ fc_in(x)) of T5 v1.1 (wi_0 = gate, wi_1 = in).
 */
import { tf, type Tensor } from '../backend/tf.ts';
import { activation, type Activation } from './activations.ts';
import { linear, type LinearParams } from './linear.ts';
import { tap, type TapSink } from './taps.ts';

export interface MlpParams {
  fcIn: LinearParams; // [H, F]
  fcOut: LinearParams; // [F, H]
  /** Present for gated MLPs. */
  fcGate?: LinearParams; // [H, F]
}

/** `sink` receives fc_gate (gated only), fc_in, act, hidden (gated only: act ⊙ fc_in) and out. */
export function mlp(x: Tensor, p: MlpParams, act: Activation, sink?: TapSink): Tensor {
  let hidden: Tensor;
  if (p.fcGate) {
    const gate = tap(sink, 'act', activation(tap(sink, 'fc_gate', linear(x, p.fcGate)), act)); // [B,T,F]
    hidden = tap(sink, 'hidden', tf.mul(gate, tap(sink, 'fc_in', linear(x, p.fcIn)))); // [B,T,F]
  } else {
    hidden = tap(sink, 'act', activation(tap(sink, 'fc_in', linear(x, p.fcIn)), act)); // [B,T,F]
  }
  return tap(sink, 'out', linear(hidden, p.fcOut)); // [B,T,F] -> [B,T,H]
}
