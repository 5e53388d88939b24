/**
 * Named intermediate values ("taps") for locating where a port diverges: every shared layer hands
 * its sub-block results (attention scores and probabilities, projections, residual sums, norms,
 * MLP activations) to an optional sink, in the order it computes them. Without a sink a tap is one
 * `undefined` check, so training and generation pay nothing.
 *
 * A sink may return a replacement tensor, which the layer then uses in place of its own value (a
 * forward hook, as torch's register_forward_hook allows): tests inject a fault at one sub-block
 * this way without touching the layer code.
 */
import type { Tensor } from '../backend/tf.ts';

export type TapSink = (name: string, value: Tensor) => Tensor | void;

/** Hands `value` to the sink under `name`; returns what the layer should use from here on. */
export function tap(sink: TapSink | undefined, name: string, value: Tensor): Tensor {
  if (!sink) return value;
  return sink(name, value) ?? value;
}

/** A sink that prefixes names: `scoped(sink, 'layer.1', '/')` turns "attn.scores" into "layer.1/attn.scores". */
export function scoped(sink: TapSink | undefined, prefix: string, separator = '/'): TapSink | undefined {
  if (!sink) return undefined;
  return (name, value) => sink(`${prefix}${separator}${name}`, value);
}
