/**
 * One forward of our model on host inputs, returning every named output and every tap (sub-block
 * value, in model order) as host floats, plus which output is which tap: a stored reference names
 * hidden states and attention maps, our layers name sub-blocks, and the model hands the same tensor
 * to both, so the correspondence is read off tensor identity instead of being written twice.
 *
 * Seams for tests: wrap the parameter lookup (a transposed weight), change one block's options
 * (unscaled scores, another GELU), or replace a tap's value (an eps change in one norm).
 */
import { tf, type Tensor } from '../backend/tf.ts';
import type { TapSink } from '../layers/taps.ts';
import type { ForwardOptions, Model } from '../models/model.ts';
import type { ParamLookup } from '../models/params.ts';
import { disposeBatch, toBatch, type HostBatch } from './batch-io.ts';

export interface HostValue {
  shape: number[];
  data: Float32Array;
}

export interface ForwardSeams {
  params?: (lookup: ParamLookup) => ParamLookup;
  layerOptions?: ForwardOptions['layerOptions'];
  /** Sees each tap first and may replace it (the replacement is what is recorded and used). */
  tap?: TapSink;
}

export interface ForwardValues {
  /** Every model output (logits, hidden_states.i, attentions.i, losses). */
  outputs: Map<string, HostValue>;
  /** Every tap, in the order the model computed them. */
  taps: Map<string, HostValue>;
  /** Output name -> the tap that is the same tensor ("hidden_states.1" -> "layer.0/mlp_norm"). */
  outputTaps: Map<string, string>;
}

/**
 * Which taps a forward records: every one (a live reference computes a value for each), only the
 * ones that are also outputs (a stored reference holds only outputs: the rest would be held for
 * nothing — for a 110M-parameter model, hundreds of MB), or none (no sink at all).
 */
export type TapRecording = 'all' | 'outputs' | 'none';

/** Runs the forward; `taps` says which sub-block values come back besides the outputs (default all). */
export async function forwardValues(model: Model, lookup: ParamLookup, inputs: HostBatch, seams: ForwardSeams = {}, taps: TapRecording | boolean = 'all'): Promise<ForwardValues> {
  const recording: TapRecording = taps === true ? 'all' : taps === false ? 'none' : taps;
  const batch = toBatch(pick(inputs, model.inputNames));
  const P = seams.params ? seams.params(lookup) : lookup;
  const tapped: Array<[string, Tensor]> = [];
  // 'outputs' keeps no tensor: it remembers, in computation order, which tap names each tensor had.
  const namesById = new Map<number, string>();
  const order: Array<[string, number]> = [];
  const sink: TapSink | undefined = recording === 'none'
    ? seams.tap
    : (name, value) => {
        const used = seams.tap?.(name, value) ?? value;
        if (recording === 'all') tapped.push([name, tf.keep(used)]);
        else {
          order.push([name, used.id]);
          if (!namesById.has(used.id)) namesById.set(used.id, name);
        }
        return used;
      };
  let outputs: Record<string, Tensor> = {};
  try {
    outputs = tf.tidy(() => model.forward(P, batch, { taps: true, tap: sink, layerOptions: seams.layerOptions }).outputs);
    for (const [name, t] of tapped) if (!namesById.has(t.id)) namesById.set(t.id, name);
    const result: ForwardValues = { outputs: new Map(), taps: new Map(), outputTaps: new Map() };
    const valueById = new Map<number, HostValue>();
    for (const [name, t] of Object.entries(outputs)) {
      const value = await hostValue(t);
      result.outputs.set(name, value);
      valueById.set(t.id, value);
      const alias = namesById.get(t.id);
      if (alias) result.outputTaps.set(name, alias);
    }
    for (const [name, t] of tapped) if (!result.taps.has(name)) result.taps.set(name, await hostValue(t));
    for (const [name, id] of order) {
      const value = valueById.get(id);
      if (value && !result.taps.has(name)) result.taps.set(name, value);
    }
    return result;
  } finally {
    // One tensor may carry several names (T5's last encoder hidden state, a tap that is an output).
    for (const t of new Set([...Object.values(outputs), ...tapped.map(([, t]) => t)])) t.dispose();
    disposeBatch(batch);
  }
}

async function hostValue(t: Tensor): Promise<HostValue> {
  const data = await t.data();
  return { shape: [...t.shape], data: data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>) };
}

export function pick(inputs: HostBatch, names: readonly string[]): HostBatch {
  return Object.fromEntries(Object.entries(inputs).filter(([k]) => names.includes(k)));
}
