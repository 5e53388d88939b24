/**
 * The reference's precomputed training batches: every input stored as [steps, rows, ...] in one
 * safetensors file, so replaying step s needs no random numbers — only slice s.
 */
import { InputError } from '../../errors.ts';
import { readSafetensors } from '../../weightmap/readers/safetensors.ts';
import { hostInput, sliceInput, type HostBatch } from '../batch-io.ts';

export class BatchSource {
  private constructor(
    readonly file: string,
    private readonly tensors: HostBatch,
    readonly steps: number,
  ) {}

  static open(file: string, inputNames: readonly string[]): BatchSource {
    const ckpt = readSafetensors(file);
    const tensors: HostBatch = {};
    let steps: number | null = null;
    for (const ref of ckpt.tensors.values()) {
      if (!inputNames.includes(ref.name)) continue;
      if (ref.shape.length < 2) throw new InputError('batch tensors must be [steps, rows, ...]', { file, tensor: ref.name, actual: JSON.stringify(ref.shape) });
      if (steps !== null && ref.shape[0] !== steps) throw new InputError('batch tensors disagree on the step count', { file, tensor: ref.name, expected: String(steps), actual: String(ref.shape[0]) });
      steps = ref.shape[0];
      tensors[ref.name] = hostInput(ref);
    }
    if (steps === null) throw new InputError('no batch tensor the model reads', { file, expected: inputNames.join(', ') });
    return new BatchSource(file, tensors, steps);
  }

  /** Inputs of optimizer step `step` (0-based), each [rows, ...]. */
  at(step: number): HostBatch {
    if (step < 0 || step >= this.steps) throw new InputError(`no batch for step ${step}`, { file: this.file, expected: `< ${this.steps}`, actual: String(step) });
    const out: HostBatch = {};
    for (const [name, t] of Object.entries(this.tensors)) out[name] = sliceInput(t, step);
    return out;
  }
}
