/**
 * The deterministic training replay: for each step, forward + backward on the backend, then
 * clipping and AdamW on host copies (train/optimizer.ts), in the reference's order:
 *   loss = forward(batch_s); g = ∇loss; norm = clip(g); p = AdamW(p, g, lr(s)).
 * A non-finite loss or gradient stops the run and names the step.
 */
import { tf, type Tensor, type Variable } from '../../backend/tf.ts';
import type { Model } from '../../models/model.ts';
import type { ParamStore } from '../../models/params.ts';
import { InputError } from '../../errors.ts';
import { disposeBatch, toBatch } from '../batch-io.ts';
import type { StepRecord } from '../curve.ts';
import type { BatchSource } from './batches.ts';
import type { TrainSpec } from './hyperparams.ts';
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
}

export interface TrainResult {
  records: StepRecord[];
  stoppedAt?: { step: number; reason: string };
  msPerStep: number;
}

export async function train(model: Model, params: ParamStore, batches: BatchSource, spec: TrainSpec, options: TrainOptions): Promise<TrainResult> {
  const trained = params.specs.filter((s) => !options.frozen?.has(s.name));
  const variables: Variable[] = trained.map((s) => params.variable(s.name));
  const initial = await params.snapshot();
  const states: ParamState[] = trained.map((s) => {
    const value = initial.get(s.name)!;
    return { name: s.name, value, m: new Float32Array(value.length), v: new Float32Array(value.length), decay: !spec.noDecay.has(s.name) };
  });
  const optimizer = new AdamW(spec.optimizer);
  const records: StepRecord[] = [];
  const started = performance.now();
  let stoppedAt: TrainResult['stoppedAt'];

  for (let step = 0; step < options.steps; step++) {
    const host = batches.at(step);
    const { loss, parts, grads } = await lossAndGradients(model, params, variables, toBatch(host), (i) => noGradient(trained[i].name, model, host, batches.file));
    const bad = firstNonFinite(loss, parts, grads, states);
    if (bad) {
      stoppedAt = { step, reason: bad };
      break;
    }
    options.editGradients?.(grads, states);
    const gradNorm = spec.clip ? clipGradients(grads, spec.clip.maxNorm, spec.clip.rule) : globalNorm(grads);
    const lr = options.lrAt ? options.lrAt(step) : lrAtStep(spec.schedule, step);
    const record: StepRecord = { step, loss, parts, gradNorm, lr };
    if (spec.countZeros) record.numZeros = countZeros(grads);
    optimizer.step(states, grads, lr);
    options.afterUpdate?.(states, step);
    tf.tidy(() => states.forEach((s, i) => variables[i].assign(tf.tensor(s.value, variables[i].shape, 'float32'))));
    records.push(record);
    options.onStep?.(record);
  }
  const ran = Math.max(records.length, 1);
  return { records, stoppedAt, msPerStep: (performance.now() - started) / ran };
}

interface StepValues {
  loss: number;
  parts: Record<string, number>;
  grads: Float32Array[];
}

async function lossAndGradients(model: Model, params: ParamStore, variables: Variable[], batch: ReturnType<typeof toBatch>, missing: (variableIndex: number) => Error): Promise<StepValues> {
  let kept: Record<string, Tensor> = {};
  let result: { value: Tensor; grads: Record<string, Tensor> } | undefined;
  try {
    result = tf.variableGrads(() => {
      const out = model.forward(params.get, batch, { taps: false });
      kept = Object.fromEntries(Object.entries(out.parts).map(([k, t]) => [k, tf.keep(t)]));
      return out.loss as tf.Scalar;
    }, variables);
    const { value, grads } = result;
    const unreached = variables.findIndex((v) => grads[v.name] === undefined);
    if (unreached >= 0) throw missing(unreached);
    const loss = (await value.data())[0];
    const parts: Record<string, number> = {};
    for (const [k, t] of Object.entries(kept)) parts[k] = (await t.data())[0];
    // The optimizer owns these buffers (it clips them in place): a copy, not a view of the backend's.
    const hostGrads = await Promise.all(variables.map(async (v) => Float32Array.from((await grads[v.name].data()) as Float32Array)));
    return { loss, parts, grads: hostGrads };
  } finally {
    if (result) {
      result.value.dispose();
      for (const g of Object.values(result.grads)) g.dispose();
    }
    for (const t of Object.values(kept)) t.dispose();
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
