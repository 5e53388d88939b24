/**
 * A training curve: per optimizer step, named scalar series. On disk it is the layout of the
 * reference fixtures' `train_curve.json` — `{ "steps": [...], "loss": [...], "lr": [...],
 * "grad_norm": [...], <parts>: [...] }` — so our runs, baselines and references read the same way.
 */
import { InputError } from '../errors.ts';
import { readJsonFile } from '../json-file.ts';

export interface Curve {
  /** 0-based optimizer steps, ascending. */
  steps: number[];
  /** metric name ("loss", "lr", "grad_norm", "mlm_loss", …) → one value per entry of `steps`. */
  metrics: Record<string, number[]>;
}

/** One training step as the train loop records it. */
export interface StepRecord {
  step: number;
  loss: number;
  /** Loss parts (BERT: mlm_loss, nsp_loss). */
  parts: Record<string, number>;
  gradNorm: number;
  lr: number;
  /** Gradient elements exactly zero after clipping (Megatron's num-zeros), when counted. */
  numZeros?: number;
}

export function curveFromRecords(records: readonly StepRecord[]): Curve {
  const metrics: Record<string, number[]> = { loss: [], lr: [], grad_norm: [] };
  for (const r of records) {
    metrics.loss.push(r.loss);
    metrics.lr.push(r.lr);
    metrics.grad_norm.push(r.gradNorm);
    for (const [k, v] of Object.entries(r.parts)) (metrics[k] ??= []).push(v);
    if (r.numZeros !== undefined) (metrics.num_zeros ??= []).push(r.numZeros);
  }
  return { steps: records.map((r) => r.step), metrics };
}

export function curveToJson(curve: Curve): Record<string, number[]> {
  return { steps: curve.steps, ...curve.metrics };
}

export function curveFromJson(json: unknown, file: string): Curve {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError('curve file is not a JSON object', { file });
  }
  const obj = json as Record<string, unknown>;
  const metrics: Record<string, number[]> = {};
  let length: number | null = null;
  for (const [key, value] of Object.entries(obj)) {
    if (!Array.isArray(value)) continue;
    if (!value.every((v) => typeof v === 'number')) {
      throw new InputError('curve series must hold only numbers', { file, tensor: key });
    }
    if (length !== null && value.length !== length) {
      throw new InputError('curve series differ in length', { file, tensor: key, expected: String(length), actual: String(value.length) });
    }
    length = value.length;
    if (key !== 'steps') metrics[key] = value as number[];
  }
  if (length === null || !('loss' in metrics)) throw new InputError('curve has no "loss" series', { file });
  const steps = Array.isArray(obj.steps) ? (obj.steps as number[]) : metrics.loss.map((_, i) => i);
  return { steps, metrics };
}

export function readCurve(file: string): Curve {
  return curveFromJson(readJsonFile(file), file);
}

/** The first `n` steps of a curve. */
export function truncateCurve(curve: Curve, n: number): Curve {
  const metrics: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(curve.metrics)) metrics[k] = v.slice(0, n);
  return { steps: curve.steps.slice(0, n), metrics };
}
