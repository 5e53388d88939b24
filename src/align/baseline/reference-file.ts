/**
 * An imported reference curve, `baselines/<suite>/references/<name>.json`:
 * `{ schema: 1, name, format, metric, ours, source: {file, sha256}, interval, stepBase,
 *    printedAfterSchedulerStep, rounding, megatron?, importedAt, warnings, curve }`.
 * `curve` is in the train_curve.json layout on our 0-based steps, under our metric name; the
 * rest says how to compare it (interval: steps averaged per point; rounding: how coarsely the
 * source printed it) and where it came from.
 */
import { z } from 'zod';
import { curveToJson, type Curve } from '../curve.ts';
import { InputError } from '../../errors.ts';
import { assertFiniteCurve, assertNoNulls } from './finite.ts';
import { describeZodIssue, readJsonFile } from '../../json-file.ts';
import { IMPORT_FORMATS, REFERENCE_NAME, type ImportFormat } from './reference-format.ts';
import type { Rounding } from './import/rounding.ts';

export const REFERENCES_DIR = 'references';

/** A Megatron golden metric's own header, kept so export writes the file back as it was. */
export interface MegatronExtent {
  form: 'dict' | 'list';
  start_step: number;
  end_step: number;
  step_interval: number;
}

export interface ReferenceFile {
  schema: 1;
  name: string;
  format: ImportFormat;
  metric: string;
  ours: string;
  source: { file: string; sha256: string };
  interval: number;
  stepBase: number;
  printedAfterSchedulerStep: boolean;
  rounding: Rounding;
  megatron?: MegatronExtent;
  importedAt: string;
  warnings: string[];
  curve: Curve;
}

const nonNegInt = z.number().int().nonnegative();

const referenceFileSchema = z.strictObject({
  schema: z.literal(1),
  name: z.string().regex(REFERENCE_NAME),
  format: z.enum(IMPORT_FORMATS),
  metric: z.string().min(1),
  ours: z.string().min(1),
  source: z.strictObject({ file: z.string(), sha256: z.string() }),
  interval: z.number().int().positive(),
  stepBase: nonNegInt,
  printedAfterSchedulerStep: z.boolean(),
  rounding: z.strictObject({ atol: z.number().nonnegative(), rtol: z.number().nonnegative() }),
  megatron: z
    .strictObject({ form: z.enum(['dict', 'list']), start_step: nonNegInt, end_step: nonNegInt, step_interval: z.number().int().positive() })
    .optional(),
  importedAt: z.string(),
  warnings: z.array(z.string()),
  curve: z.record(z.string(), z.unknown()),
});

export function serializeReference(ref: ReferenceFile): string {
  const { curve, ...head } = ref;
  return `${JSON.stringify({ ...head, curve: curveToJson(curve) }, null, 2)}\n`;
}

export function readReference(file: string): ReferenceFile {
  const parsed = referenceFileSchema.safeParse(readJsonFile(file));
  if (!parsed.success) {
    throw new InputError(describeZodIssue(parsed.error), { file, cause: parsed.error });
  }
  const { ours } = parsed.data;
  const raw = parsed.data.curve;
  assertNoNulls(raw, file);
  // A reference holds one metric; curveFromJson wants our runs' "loss" series, so check by hand.
  const steps = raw.steps;
  const values = raw[ours];
  const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');
  if (!isNumbers(steps) || !isNumbers(values) || steps.length !== values.length) {
    throw new InputError(`curve must hold "steps" and ${JSON.stringify(ours)} as number arrays of equal length`, { file, tensor: `curve.${ours}` });
  }
  for (let i = 1; i < steps.length; i++) {
    if (!(steps[i] > steps[i - 1])) throw new InputError(`curve steps must ascend (index ${i})`, { file, tensor: 'curve.steps' });
  }
  const curve: Curve = { steps, metrics: { [ours]: values } };
  assertFiniteCurve(curve, file);
  return { ...parsed.data, curve };
}
