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
import { AdamW, clipGradients, type ParamState } from './optimizer.ts';
import { lrAtStep } from './schedule.ts';

export interface TrainOptions {
  steps: number;
  onStep?: (record: StepRecord) => void;
  /**
   * Edits the host parameters after each update, before they reach the backend. Calibration
   * uses it to emulate an implementation that rounds differently at every step.
   */
  afterUpdate?: (params: readonly ParamState[], step: number) => void;
  /** Parameters held fixed: no gradient is taken for them, none enters the norm, none is updated. */
  frozen?: ReadonlySet<string>;
  /**
   * What another implementation might do differently, for the tests that prove the curve gate
   * catches it: the LR applied at a step (default: the schedule's), and an edit of the raw
   * gradients before clipping (an L2 term, per-tensor clipping).
   */
  lrAt?: (step: number) => number;
  editGradients?: (grads: Float32Array[], params: readonly ParamState[]) => void;
  /** Where clipping and AdamW run: on host copies, float32-exact (default), or on the backend. */
  optimizer?: OptimizerPlace;
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
    return gradientsOnDevice(model, params, variables, toBatch(host), (i) => noGradient(trained[i].name, model, host, batches.file));
  };
  if (options.optimizer === 'device') {
    if (options.editGradients || options.afterUpdate) throw new Error('editGradients and afterUpdate act on host copies: use the host optimizer');
    const optimizer = new DeviceAdamW(spec.optimizer, variables, trained.map((s) => !spec.noDecay.has(s.name)));
    try {
      return await runSteps(options, (step) => deviceStep(step, gradientsOf, optimizer, spec, lrAt(step)));
    } finally {
      optimizer.dispose();
    }
  }

  const initial = await params.snapshot();
  const states: ParamState[] = trained.map((s) => {
    const value = initial.get(s.name)!;
    return { name: s.name, value, m: new Float32Array(value.length), v: new Float32Array(value.length), decay: !spec.noDecay.has(s.name) };
  });
  const optimizer = new AdamW(spec.optimizer);
  return runSteps(options, async (step) => {
    const { loss, parts, grads } = await readToHost(await gradientsOf(step));
    const bad = firstNonFinite(loss, parts, grads, states);
    if (bad) return { stop: bad };
    options.editGradients?.(grads, states);
    const gradNorm = spec.clip ? clipGradients(grads, spec.clip.maxNorm, spec.clip.rule) : globalNorm(grads);
    const lr = lrAt(step);
    const record: StepRecord = { step, loss, parts, gradNorm, lr };
    if (spec.countZeros) record.numZeros = countZeros(grads);
    optimizer.step(states, grads, lr);
    options.afterUpdate?.(states, step);
    tf.tidy(() => states.forEach((s, i) => variables[i].assign(tf.tensor(s.value, variables[i].shape, 'float32'))));
    return { record };
  });
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
    const bad = firstNonFinite(loss, parts, [], []) ?? (Number.isFinite(gradNorm) ? null : `gradient norm is ${gradNorm}`);
    if (bad) return { stop: bad };
    const coef = clipCoefficient(gradNorm, spec.clip);
    const clipped = coef === 1 ? g.grads : tf.tidy(() => g.grads.map((x) => tf.mul(x, coef)));
    const record: StepRecord = { step, loss, parts, gradNorm, lr };
    if (spec.countZeros) {
      const zeros = deviceCountZeros(clipped);
      record.numZeros = (await zeros.data())[0];
      zeros.dispose();
    }
    optimizer.step(clipped, lr);
    if (clipped !== g.grads) for (const x of clipped) x.dispose();
    return { record };
  } finally {
    g.dispose();
  }
}

interface StepValues {
  loss: number;
  parts: Record<string, number>;
  grads: Float32Array[];
}

/** A step's loss, its parts and the gradient of every trained variable (in order), on the device. */
interface DeviceGradients {
  value: Tensor;
  parts: Record<string, Tensor>;
  grads: Tensor[];
  dispose(): void;
}

async function gradientsOnDevice(model: Model, params: ParamStore, variables: Variable[], batch: ReturnType<typeof toBatch>, missing: (variableIndex: number) => Error): Promise<DeviceGradients> {
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
      const out = model.forward(params.get, batch, { taps: false });
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

/** Everything on the host, the device tensors released. */
async function readToHost(g: DeviceGradients): Promise<StepValues> {
  try {
    const loss = (await g.value.data())[0];
    const parts: Record<string, number> = {};
    for (const [k, t] of Object.entries(g.parts)) parts[k] = (await t.data())[0];
    // The optimizer owns these buffers (it clips them in place): a copy, not a view of the backend's.
    const grads = await Promise.all(g.grads.map(async (t) => Float32Array.from((await t.data()) as Float32Array)));
    return { loss, parts, grads };
  } finally {
    g.dispose();
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

function firstNonFinite(loss: number, parts: Record<string, number>, grads: Float32Array[], states: ParamState[]): string | null {
  if (!Number.isFinite(loss)) return `loss is ${loss}`;
  for (const [k, v] of Object.entries(parts)) if (!Number.isFinite(v)) return `${k} is ${v}`;
  for (let i = 0; i < grads.length; i++) {
    const g = grads[i];
    for (let j = 0; j < g.length; j++) if (!Number.isFinite(g[j])) return `gradient of ${states[i].name} has ${g[j]}`;
  }
  return null;
}

function globalNorm(grads: Float32Array[]): number {
  let s = 0;
  for (const g of grads) for (let j = 0; j < g.length; j++) s += g[j] * g[j];
  return Math.sqrt(s);
}

function countZeros(grads: Float32Array[]): number {
  let n = 0;
  for (const g of grads) for (let j = 0; j < g.length; j++) if (g[j] === 0) n++;
  return n;
}
