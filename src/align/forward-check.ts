/**
 * The forward check: run the model on the suite's eval inputs with the initial (and final)
 * weights and compare every reference tensor — logits, each hidden state, each attention map,
 * the loss and its parts — then walk our sub-block taps in model order against the finest
 * reference values there are, naming the first sub-block that diverges.
 *
 * The reference is either stored (forward_*.safetensors written by the reference framework: its
 * hidden states and attention maps are the checkpoints) or live (ONNX graphs run by onnxruntime on
 * the same inputs: every sub-block value the graph computes can be a checkpoint).
 */
import { basename } from 'node:path';
import { InputError } from '../errors.ts';
import type { Model } from '../models/model.ts';
import type { ParamLookup } from '../models/params.ts';
import { OnnxReference } from '../reference/onnx-reference.ts';
import { DEFAULT_ORT_SETTINGS, ortVersion, type OrtSettings } from '../reference/onnx-runtime.ts';
import { readSafetensors } from '../weightmap/readers/safetensors.ts';
import { readInputs, type HostBatch } from './batch-io.ts';
import type { Checkpoint } from '../weightmap/checkpoint.ts';
import { compareTensor, type ForwardNoise, type PositionMask } from './compare-tensor.ts';
import { forwardValues, type ForwardSeams, type ForwardValues, type HostValue } from './forward-run.ts';
import { loadParams, type LoadOptions } from './load-model.ts';
import { compareValues } from './localize/compare-checkpoint.ts';
import { matchByValue, placeByScope, type Correspondence, type GraphValue } from './localize/correspond.ts';
import { ONNX_SCOPE_TABLES, type ScopeTable } from './localize/onnx-scopes.ts';
import { findDivergence } from './localize/walk.ts';
import type { CheckpointComparison, CheckpointMatch, ForwardReference, ForwardVerdict, TensorComparison } from './verdict.ts';

export interface ForwardRun {
  /** Prefix of the tensor names in the verdict: "initial", "final", or a checkpoint variant. */
  label: string;
  /** The checkpoint our weights come from; several files make one checkpoint (T5's two ONNX graphs). */
  weightsPath: string | readonly string[];
  /** Stored reference tensors (forward_*.safetensors)… */
  referencePath?: string;
  /** …and the same tensors computed in float64 by the reference (forward_*.float64.safetensors), when there is one. */
  reference64Path?: string;
  /** …or ONNX graphs that onnxruntime runs on the eval inputs, in this order. */
  onnx?: readonly string[];
}

export interface Tolerance {
  atol: number;
  rtol: number;
  /** Overrides by reference tensor name. */
  tensors?: Record<string, { atol: number; rtol: number }>;
  /** With a float64 record: widen to k × the reference's own error, per row (compare-tensor.ts). */
  envelope?: { k: number };
}

export interface ForwardCheckOptions extends LoadOptions {
  /** Walk the sub-block taps and name the first failing one (default true). */
  localize?: boolean;
  /** How onnxruntime runs a live reference (default: 1 thread, no graph optimization). */
  ort?: OrtSettings;
  /** Test seams: a wrapped parameter lookup, per-layer options, a tap that replaces a value. */
  seams?: ForwardSeams;
  /** Where taps sit in an ONNX graph; default: the family's table (onnx-scopes.ts); null: match every tap by value. */
  scopeTable?: ScopeTable | null;
}

/** Our parameters for one run, disposed after `f` (reads await the device, so webgpu runs the same code). */
async function withParams<T>(model: Model, weightsPath: string | readonly string[], load: LoadOptions, f: (P: ParamLookup) => Promise<T>): Promise<T> {
  const { params } = loadParams(model, weightsPath, load);
  try {
    return await f(params.get);
  } finally {
    params.dispose();
  }
}

/** A reference value for one of our taps, and how it was found. */
interface TapReference {
  value: HostValue;
  reference: string;
  match: CheckpointMatch;
  note: string;
}

/** What one run's reference provides: tensors under the stored names, and values for our taps. */
interface RunReference {
  /** Read when compared, one at a time: a stored reference is never held whole. */
  tensors: Map<string, () => HostValue>;
  forTap(tap: string): TapReference | undefined;
}

export async function checkForward(model: Model, evalInputsPath: string, runs: readonly ForwardRun[], tol: Tolerance, options: ForwardCheckOptions = {}): Promise<ForwardVerdict> {
  const inputs = readInputs(readSafetensors(evalInputsPath));
  const localize = options.localize ?? true;
  const tensors: TensorComparison[] = [];
  const checkpoints: CheckpointComparison[] = [];
  let coarseDivergence: string | null = null;
  const reference: ForwardReference = { kind: runs.some((r) => r.onnx) ? 'onnx' : 'stored', files: [] };
  for (const run of runs) {
    const ours = await withParams(model, run.weightsPath, options, (P) => forwardValues(model, P, inputs, options.seams ?? {}, !localize ? 'none' : run.onnx ? 'all' : 'outputs'));
    let ref: RunReference;
    if (run.onnx) {
      const settings = options.ort ?? DEFAULT_ORT_SETTINGS;
      ref = await onnxReference(model, run.onnx, settings, inputs, ours, options.scopeTable === undefined ? ONNX_SCOPE_TABLES[model.family] : (options.scopeTable ?? undefined));
      reference.files.push(...run.onnx);
      reference.runtime = { name: 'onnxruntime-node', version: await ortVersion(), threads: settings.threads, optimization: settings.optimization };
    } else {
      if (!run.referencePath) throw new Error(`forward run ${run.label} has neither a stored nor an ONNX reference`);
      ref = storedReference(run.referencePath, ours);
      reference.files.push(run.referencePath);
    }

    const compared = new Map<string, TensorComparison>();
    const reference64 = !run.onnx && run.reference64Path && tol.envelope ? readSafetensors(run.reference64Path) : undefined;
    for (const [refName, read] of ref.tensors) {
      const refValue = read();
      const name = `${run.label}/${refName}`;
      const actual = ours.outputs.get(refName);
      const t = tol.tensors?.[refName] ?? tol;
      const noise = reference64 && tol.envelope ? forwardNoise(reference64, refName, refValue.shape, tol.envelope.k) : undefined;
      const result = actual
        ? compareTensor(name, actual.data, refValue.data, [...refValue.shape], t.atol, t.rtol, masksFor(model, refName, inputs), noise)
        : { name, shape: [...refValue.shape], atol: t.atol, rtol: t.rtol, maxAbsDiff: Number.POSITIVE_INFINITY, maxRelDiff: Number.POSITIVE_INFINITY, pass: false, compared: 0 };
      compared.set(refName, result);
      tensors.push(result);
    }
    if (coarseDivergence === null) {
      const layer = model.layerOutputOrder().find((n) => compared.get(n)?.pass === false);
      if (layer) coarseDivergence = `${run.label}/${layer}`;
    }

    for (const [tapName, value] of ours.taps) {
      const r = ref.forTap(tapName);
      if (!r) continue;
      const output = [...ours.outputTaps].find(([, tap]) => tap === tapName)?.[0];
      const t = (output && tol.tensors?.[output]) || tol;
      const cmp = compareValues(value, r.value, t.atol, t.rtol, masksFor(model, tapName, inputs));
      // A stored output the reference's float64 record widened: the checkpoint is that same tensor, so it takes that verdict.
      const widened = output && r.match === 'output' ? compared.get(output)?.envelope : undefined;
      const pass = widened ? cmp.pass || compared.get(output!)!.pass : cmp.pass;
      checkpoints.push({
        name: `${run.label}/${tapName}`, reference: r.reference, match: r.match, note: cmp.shapeMismatch ? `${r.note}; shape mismatch: ${cmp.shapeMismatch}` : r.note,
        shape: [...r.value.shape], maxAbsDiff: cmp.maxAbsDiff, maxRelDiff: cmp.maxRelDiff, cosine: cmp.cosine, atol: t.atol, rtol: t.rtol, pass, compared: cmp.compared,
      });
    }
  }
  const divergence = localize ? findDivergence(checkpoints) : null;
  const maxAbsDiff = tensors.reduce((m, t) => Math.max(m, t.maxAbsDiff), 0);
  // A value-matched checkpoint is a guess: it may name where to look, but it does not fail the check.
  const trusted = checkpoints.filter((c) => c.match !== 'value');
  const pass = tensors.length > 0 && tensors.every((t) => t.pass) && trusted.every((c) => c.pass);
  const verdict: ForwardVerdict = { pass, atol: tol.atol, rtol: tol.rtol, maxAbsDiff, tensors, firstDivergence: divergence?.name ?? coarseDivergence, reference };
  if (localize) Object.assign(verdict, { checkpoints, divergence });
  return verdict;
}

/** Stored tensors; a tap's reference is the stored tensor whose output is that same tap (hidden_states.2 is layer.1's output). */
function storedReference(path: string, ours: ForwardValues): RunReference {
  const file = readSafetensors(path);
  const tensors = new Map<string, () => HostValue>([...file.tensors.values()].map((t) => [t.name, () => ({ shape: [...t.shape], data: t.toFloat32() })]));
  const byTap = new Map<string, string>();
  for (const [output, tap] of ours.outputTaps) if (tensors.has(output) && !byTap.has(tap)) byTap.set(tap, output);
  return {
    tensors,
    forTap: (tap) => {
      const output = byTap.get(tap);
      return output ? { value: tensors.get(output)!(), reference: output, match: 'output', note: `stored tensor ${output}` } : undefined;
    },
  };
}

/**
 * Runs the graphs with every tap's counterpart added as an output. Taps the scope table cannot
 * place are matched by value among all float values of the graphs (one more run, with every
 * value as an output). The stored-name tensors are the graph outputs, plus the placed taps that
 * are model outputs (attention maps: attentions.0 is the Softmax output of layer 0).
 */
async function onnxReference(model: Model, files: readonly string[], settings: OrtSettings, inputs: HostBatch, ours: ForwardValues, table: ScopeTable | undefined): Promise<RunReference> {
  const onnx = OnnxReference.open(files, settings);
  try {
    const graphs = onnx.graphs;
    const placed = new Map<string, Correspondence>();
    const unplaced: string[] = [];
    for (const tap of ours.taps.keys()) {
      const c = placeByScope(graphs, table, tap);
      if (c) placed.set(tap, c);
      else if (c === undefined) unplaced.push(tap);
    }
    const extra = graphs.map((_, g) => [...placed.values()].filter((c) => c.graph === g).map((c) => c.value));
    const all = unplaced.length > 0 ? onnx.models.map((m) => m.nodeValues()) : extra;
    const values = await onnx.run(inputs, all);
    const at = (c: GraphValue) => values[c.graph].get(c.value);

    if (unplaced.length > 0) {
      const candidates = values.flatMap((m, g) => [...m].map(([value, tensor]) => ({ graph: g, value, tensor })));
      for (const tap of unplaced) {
        const m = matchByValue(ours.taps.get(tap)!, candidates, masksFor(model, tap, inputs));
        if (m) placed.set(tap, m);
      }
    }

    const tensors = new Map<string, () => HostValue>();
    for (const output of ours.outputs.keys()) {
      const declared = graphs.findIndex((g) => g.outputs.some((o) => o.name === output));
      const tap = ours.outputTaps.get(output);
      const c = declared >= 0 ? { graph: declared, value: output } : tap ? placed.get(tap) : undefined;
      const v = c && c.value !== undefined ? at(c) : undefined;
      if (v) tensors.set(output, () => v);
    }
    return {
      tensors,
      forTap: (tap) => {
        const c = placed.get(tap);
        const v = c && at(c);
        return c && v ? { value: v, reference: c.value, match: c.by, note: files.length > 1 ? `${c.note} in ${files[c.graph]}` : c.note } : undefined;
      },
    };
  } finally {
    await onnx.release();
  }
}

/** The float64 record of one reference tensor, which must have the same shape; none is no envelope. */
function forwardNoise(reference64: Checkpoint, name: string, shape: readonly number[], k: number): ForwardNoise | undefined {
  const t64 = reference64.tensors.get(name);
  if (!t64) return undefined;
  if (t64.shape.join(',') !== shape.join(',')) {
    throw new InputError('the float64 record of a reference tensor has another shape', { file: reference64.path, tensor: name, expected: `[${shape.join(', ')}]`, actual: `[${t64.shape.join(', ')}]` });
  }
  if (!t64.toFloat64) throw new InputError('cannot read the float64 record as float64', { file: reference64.path, tensor: name });
  return { source: basename(reference64.path), values64: t64.toFloat64(), k };
}

/** Every padding mask that governs an axis of `name` (scores: the query and the key axis). */
function masksFor(model: Model, name: string, inputs: HostBatch): PositionMask[] {
  return model.paddedAxes.flatMap((a) => {
    const mask = a.pattern.test(name) ? inputs[a.maskInput] : undefined;
    return mask?.dtype === 'int32' ? [{ axis: a.axis, valid: mask.data, positions: mask.shape[1] }] : [];
  });
}
