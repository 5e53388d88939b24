/**
 * The deterministic training replay: for each step, forward + backward on the backend, then
 * clipping and AdamW on host copies (train/optimizer.ts), in the reference's order:
 *   loss = forward(batch_s); g = ∇loss; norm = clip(g); p = AdamW(p, g, lr(s)).
 * A non-finite loss or gradient stops the run and names the step.
 * With `optimizer: 'device'`, clipping and AdamW run on the backend instead (device-optimizer.ts):
 * for GPU-sized models, where moving every gradient and parameter through the host each step
 * would cost more than the step itself.
 */
import { tf, type Tensor, type Variable } from '../../backend/tf.ts';
import type { Model } from '../../models/model.ts';
import type { ParamStore } from '../../models/params.ts';
import { InputError } from '../../errors.ts';
import { disposeBatch, toBatch } from '../batch-io.ts';
import type { StepRecord } from '../curve.ts';
import type { BatchSource } from './batches.ts';
import type { TrainSpec } from './hyperparams.ts';
import { clipCoefficient, DeviceAdamW, deviceCountZeros, deviceGradNorm } from './device-optimizer.ts';
import { AdamW, clipScale, globalNorm, scaleInPlace, sumSquares, type ParamState } from './optimizer.ts';
import { lrAtStep } from './schedule.ts';

export interface TrainOptions {
  steps: number;
  onStep?: (record: StepRecord) => void;
  /**
   * Edits a host parameter after its update, before it reaches the backend (called for each
   * trained parameter in order). Calibration uses it to emulate an implementation that rounds
   * differently at every step.
   */
  afterUpdate?: (param: ParamState, step: number) => void;
  /** Parameters held fixed: no gradient is taken for them, none enters the norm, none is updated. */
  frozen?: ReadonlySet<string>;
  /**
   * What another implementation might do differently, for the tests that prove the curve gate
   * catches it: the LR applied at a step (default: the schedule's), and an edit of the raw
   * gradient of each parameter before clipping (an L2 term, per-tensor clipping); `param.value`
   * holds the parameter's current value then.
   */
  lrAt?: (step: number) => number;
  editGradient?: (grad: Float32Array, param: ParamState) => void;
  /** Where clipping and AdamW run: on host copies, float32-exact (default), or on the backend. */
  optimizer?: OptimizerPlace;
  /** Recompute each layer in the backward pass (less memory, bit-identical gradients). */
  recompute?: boolean;
}

export type OptimizerPlace = 'host' | 'device';

export interface TrainResult {
  records: StepRecord[];
  stoppedAt?: { step: number; reason: string };
  msPerStep: number;
}

export async function train(model: Model, params: ParamStore, batches: BatchSource, spec: TrainSpec, options: TrainOptions): Promise<TrainResult> {
  const trained = params.specs.filter((s) => !options.frozen?.has(s.name));
  const variables: Variable[] = trained.map((s) => params.variable(s.name));
  const lrAt = options.lrAt ?? ((step: number) => lrAtStep(spec.schedule, step));
  const gradientsOf = async (step: number) => {
    const host = batches.at(step);
    return gradientsOnDevice(model, params, variables, toBatch(host), options.recompute ?? false, (i) => noGradient(trained[i].name, model, host, batches.file));
  };
  if (options.optimizer === 'device') {
    if (options.editGradient || options.afterUpdate) throw new Error('editGradient and afterUpdate act on host copies: use the host optimizer');
    const optimizer = new DeviceAdamW(spec.optimizer, variables, trained.map((s) => !spec.noDecay.has(s.name)));
    try {
      return await runSteps(options, (step) => deviceStep(step, gradientsOf, optimizer, spec, lrAt(step)));
    } finally {
      optimizer.dispose();
    }
  }

  // The host keeps the Adam moments only: each step reads a parameter from the backend when its
  // update comes, and gradients are read one at a time (twice when they do not fit HOST_GRADIENT_BYTES:
  // once for the global norm, once for the update), so training a model holds its parameters and
  // gradients once each, on the backend, plus the two moments here.
  const states: ParamState[] = trained.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    return { name: s.name, value: EMPTY, m: new Float32Array(n), v: new Float32Array(n), decay: !spec.noDecay.has(s.name) };
  });
  const optimizer = new AdamW(spec.optimizer);
  return runSteps(options, async (step) => {
    const g = await gradientsOf(step);
    try {
      return await hostStep(step, g, states, variables, optimizer, spec, lrAt(step), options);
    } finally {
      g.dispose();
    }
  });
}

const EMPTY = new Float32Array(0);

/** Up to this many bytes of gradients stay on the host between the norm and the update; the rest is read again. */
const HOST_GRADIENT_BYTES = 64 * 2 ** 20;

/** One step with clipping and AdamW on the host, one parameter at a time. */
async function hostStep(
  step: number,
  g: DeviceGradients,
  states: ParamState[],
  variables: Variable[],
  optimizer: AdamW,
  spec: TrainSpec,
  lr: number,
  options: TrainOptions,
): Promise<StepOutcome> {
  const loss = (await g.value.data())[0];
  const parts: Record<string, number> = {};
  for (const [k, t] of Object.entries(g.parts)) parts[k] = (await t.data())[0];
  const badLoss = firstNonFinite(loss, parts);
  if (badLoss) return { stop: badLoss };

  // A gradient on the host, edited as the seam says; the optimizer owns it (clips it in place),
  // so it is a copy, never a view of the backend's storage.
  const hostGradient = async (i: number) => {
    const grad = await copyToHost(g.grads[i]);
    if (options.editGradient) {
      states[i].value = await copyToHost(variables[i]);
      options.editGradient(grad, states[i]);
      states[i].value = EMPTY;
    }
    return grad;
  };
  const kept: Array<Float32Array | undefined> = [];
  let keptBytes = 0;
  const sums: number[] = [];
  for (let i = 0; i < states.length; i++) {
    const grad = await hostGradient(i);
    const bad = nonFiniteAt(grad);
    if (bad >= 0) return { stop: `gradient of ${states[i].name} has ${grad[bad]}` };
    sums.push(sumSquares(grad));
    if (keptBytes + grad.byteLength <= HOST_GRADIENT_BYTES) {
      kept[i] = grad;
      keptBytes += grad.byteLength;
    }
  }
  const gradNorm = spec.clip ? globalNorm(sums, spec.clip.rule) : Math.sqrt(sums.reduce((a, b) => a + b, 0));
  const coef = spec.clip ? clipScale(gradNorm, spec.clip.maxNorm, spec.clip.rule) : 1;

  let zeros = 0;
  optimizer.beginStep();
  for (let i = 0; i < states.length; i++) {
    const grad = kept[i] ?? (await hostGradient(i));
    kept[i] = undefined;
    if (coef !== 1) scaleInPlace(grad, coef);
    if (spec.countZeros) zeros += countZeros(grad);
    const state = states[i];
    state.value = await copyToHost(variables[i]);
    optimizer.update(state, grad, lr);
    options.afterUpdate?.(state, step);
    const updated = tf.tensor(state.value, variables[i].shape, 'float32');
    variables[i].assign(updated);
    updated.dispose();
    state.value = EMPTY;
  }
  const record: StepRecord = { step, loss, parts, gradNorm, lr };
  if (spec.countZeros) record.numZeros = zeros;
  return { record };
}

/**
 * A host array the caller may write into. wasm's read is already a fresh slice of its heap; the cpu
 * backend hands out its own storage and webgpu its cached copy, so elsewhere a copy is made.
 */
async function copyToHost(t: Tensor): Promise<Float32Array> {
  const data = (await t.data()) as Float32Array;
  return tf.getBackend() === 'wasm' ? data : Float32Array.from(data);
}

type StepOutcome = { record: StepRecord } | { stop: string };

/** The loop both optimizers share: steps in order, stopping at the first non-finite value. */
async function runSteps(options: TrainOptions, step: (n: number) => Promise<StepOutcome>): Promise<TrainResult> {
  const records: StepRecord[] = [];
  const started = performance.now();
  let stoppedAt: TrainResult['stoppedAt'];
  for (let n = 0; n < options.steps; n++) {
    const outcome = await step(n);
    if ('stop' in outcome) {
      stoppedAt = { step: n, reason: outcome.stop };
      break;
    }
    records.push(outcome.record);
    options.onStep?.(outcome.record);
  }
  const ran = Math.max(records.length, 1);
  return { records, stoppedAt, msPerStep: (performance.now() - started) / ran };
}

/**
 * One step with the optimizer on the device: the loss, its parts and the gradient norm come back
 * (three scalars), nothing else. A non-finite gradient shows as a non-finite norm.
 */
async function deviceStep(step: number, gradientsOf: (step: number) => Promise<DeviceGradients>, optimizer: DeviceAdamW, spec: TrainSpec, lr: number): Promise<StepOutcome> {
  const g = await gradientsOf(step);
  try {
    const normTensor = deviceGradNorm(g.grads, spec.clip?.rule ?? null);
    const [loss, gradNorm] = [(await g.value.data())[0], (await normTensor.data())[0]];
    normTensor.dispose();
    const parts: Record<string, number> = {};
    for (const [k, t] of Object.entries(g.parts)) parts[k] = (await t.data())[0];
    const bad = firstNonFinite(loss, parts) ?? (Number.isFinite(gradNorm) ? null : `gradient norm is ${gradNorm}`);
    if (bad) return { stop: bad };
    const coef = clipCoefficient(gradNorm, spec.clip);

    const record: StepRecord = { step, loss, parts, gradNorm, lr };
    if (spec.countZeros) {
      const zeros = deviceCountZeros(g.grads, coef);
      record.numZeros = (await zeros.data())[0];
      zeros.dispose();
    }
    optimizer.step(g.grads, lr, coef);
    return { record };
  } finally {
    g.dispose();
  }
}

/** A step's loss, its parts and the gradient of every trained variable (in order), on the device. */
interface DeviceGradients {
  value: Tensor;
  parts: Record<string, Tensor>;
  grads: Tensor[];
  dispose(): void;
}

async function gradientsOnDevice(model: Model, params: ParamStore, variables: Variable[], batch: ReturnType<typeof toBatch>, recompute: boolean, missing: (variableIndex: number) => Error): Promise<DeviceGradients> {
  let kept: Record<string, Tensor> = {};
  let result: { value: Tensor; grads: Record<string, Tensor> } | undefined;
  const dispose = () => {
    if (result) {
      result.value.dispose();
      for (const g of Object.values(result.grads)) g.dispose();
    }
    for (const t of Object.values(kept)) t.dispose();
  };
  try {
    result = tf.variableGrads(() => {
      const out = model.forward(params.get, batch, { taps: false, recompute });
      kept = Object.fromEntries(Object.entries(out.parts).map(([k, t]) => [k, tf.keep(t)]));
      return out.loss as tf.Scalar;
    }, variables);
    const { value, grads } = result;
    const unreached = variables.findIndex((v) => grads[v.name] === undefined);
    if (unreached >= 0) throw missing(unreached);
    return { value, parts: kept, grads: variables.map((v) => grads[v.name]), dispose };
  } catch (error) {
    dispose();
    throw error;
  } finally {
    disposeBatch(batch);
  }
}

/**
 * A parameter the loss does not reach: a loss whose input the batches lack (BERT's NSP loss without
 * next_sentence_label), so the replay cannot train what the reference trained.
 */
function noGradient(param: string, model: Model, batch: Readonly<Record<string, unknown>>, file: string): InputError {
  const absent = model.inputNames.filter((n) => !(n in batch));
  return new InputError(`no gradient reaches parameter ${param}: the loss that trains it needs an input the training batches lack`, {
    file,
    tensor: absent.join(', ') || param,
    expected: `every input the model reads: ${model.inputNames.join(', ')}`,
    actual: absent.length ? `missing ${absent.join(', ')}` : 'all present',
  });
}

function firstNonFinite(loss: number, parts: Record<string, number>): string | null {
  if (!Number.isFinite(loss)) return `loss is ${loss}`;
  for (const [k, v] of Object.entries(parts)) if (!Number.isFinite(v)) return `${k} is ${v}`;
  return null;
}

function nonFiniteAt(g: Float32Array): number {
  for (let j = 0; j < g.length; j++) if (!Number.isFinite(g[j])) return j;
  return -1;
}

function countZeros(g: Float32Array): number {
  let n = 0;
  for (let j = 0; j < g.length; j++) if (g[j] === 0) n++;
  return n;
}
