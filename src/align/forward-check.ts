/**
 * The forward check: run the model on the suite's eval inputs with the initial (and final)
 * weights and compare every reference tensor — logits, each hidden state, each attention map,
 * the loss and its parts — naming the first layer output that diverges.
 */
import { tf } from '../backend/tf.ts';
import type { Model } from '../models/model.ts';
import { readSafetensors } from '../weightmap/readers/safetensors.ts';
import { disposeBatch, readIntTensors, toBatch, type HostBatch } from './batch-io.ts';
import { compareTensor, type PositionMask } from './compare-tensor.ts';
import { loadParams, type LoadOptions } from './load-model.ts';
import type { ForwardVerdict, TensorComparison } from './verdict.ts';

export interface ForwardRun {
  /** Prefix of the tensor names in the verdict: "initial", "final", or a checkpoint variant. */
  label: string;
  weightsPath: string;
  referencePath: string;
}

export interface Tolerance {
  atol: number;
  rtol: number;
  /** Overrides by reference tensor name. */
  tensors?: Record<string, { atol: number; rtol: number }>;
}

/**
 * Runs the forward once and returns every output as host floats. Reads await the device, so
 * the same code serves backends that can only read asynchronously (webgpu).
 */
export async function forwardOutputs(model: Model, weightsPath: string, inputs: HostBatch, load: LoadOptions = {}): Promise<Map<string, Float32Array>> {
  const { params } = loadParams(model, weightsPath, load);
  const batch = toBatch(pick(inputs, model.inputNames));
  let outputs: Record<string, tf.Tensor> = {};
  try {
    outputs = tf.tidy(() => model.forward(params.get, batch, { taps: true }).outputs);
    const host = new Map<string, Float32Array>();
    // One tensor may carry two names (T5's last encoder hidden state): read all, then dispose.
    for (const [name, t] of Object.entries(outputs)) host.set(name, (await t.data()) as Float32Array);
    return host;
  } finally {
    for (const t of new Set(Object.values(outputs))) t.dispose();
    disposeBatch(batch);
    params.dispose();
  }
}

export async function checkForward(model: Model, evalInputsPath: string, runs: readonly ForwardRun[], tol: Tolerance, load: LoadOptions = {}): Promise<ForwardVerdict> {
  const inputs = readIntTensors(readSafetensors(evalInputsPath));
  const tensors: TensorComparison[] = [];
  let firstDivergence: string | null = null;
  for (const run of runs) {
    const ours = await forwardOutputs(model, run.weightsPath, inputs, load);
    const reference = readSafetensors(run.referencePath);
    const compared = new Map<string, TensorComparison>();
    for (const ref of reference.tensors.values()) {
      const name = `${run.label}/${ref.name}`;
      const actual = ours.get(ref.name);
      const t = tol.tensors?.[ref.name] ?? tol;
      const result = actual
        ? compareTensor(name, actual, ref.toFloat32(), [...ref.shape], t.atol, t.rtol, maskFor(model, ref.name, inputs))
        : { name, shape: [...ref.shape], atol: t.atol, rtol: t.rtol, maxAbsDiff: Number.POSITIVE_INFINITY, maxRelDiff: Number.POSITIVE_INFINITY, pass: false, compared: 0 };
      compared.set(ref.name, result);
      tensors.push(result);
    }
    if (firstDivergence === null) {
      const layer = model.layerOutputOrder().find((n) => compared.get(n)?.pass === false);
      if (layer) firstDivergence = `${run.label}/${layer}`;
    }
  }
  const maxAbsDiff = tensors.reduce((m, t) => Math.max(m, t.maxAbsDiff), 0);
  return { pass: tensors.length > 0 && tensors.every((t) => t.pass), atol: tol.atol, rtol: tol.rtol, maxAbsDiff, tensors, firstDivergence };
}

function maskFor(model: Model, name: string, inputs: HostBatch): PositionMask | undefined {
  const axis = model.paddedAxes.find((a) => a.pattern.test(name));
  const mask = axis && inputs[axis.maskInput];
  if (!axis || !mask) return undefined;
  return { axis: axis.axis, valid: mask.data, positions: mask.shape[1] };
}

function pick(inputs: HostBatch, names: readonly string[]): HostBatch {
  return Object.fromEntries(Object.entries(inputs).filter(([k]) => names.includes(k)));
}
