/**
 * `baselines/<suite>/manifest.json`: model family, provenance of the reference, the tolerance
 * policy per metric, and the references imported into the suite. Every key is optional except
 * `schema`; absent keys (or an absent file) take the defaults of `defaults.ts`.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import type { CurveTolerance, EnvelopeRule } from '../compare-curve.ts';
import { DETERMINISTIC } from '../compare-curve.ts';
import { writeFileAtomic } from './atomic.ts';
import { InputError } from '../../errors.ts';
import {
  DEFAULT_CURVE_TOLERANCES,
  FORWARD_ATOL,
  FORWARD_ENVELOPE,
  FORWARD_RTOL,
  GENERATION_LOGIT_ATOL,
  GENERATION_LOGIT_RTOL,
  GOLDEN_TOLERANCE,
} from './defaults.ts';
import { FAMILY_NAMES, type FamilyName } from '../../families/registry.ts';
import { deriveFamily } from './family.ts';
import { describeZodIssue, readJsonFile } from '../../json-file.ts';
import { IMPORT_FORMATS, REFERENCE_NAME } from './reference-format.ts';

export const MANIFEST_FILE = 'manifest.json';

const nonNegative = z.number().nonnegative();

const envelopeSchema = z.strictObject({ k: z.number().positive(), atol: nonNegative.default(0), rtol: nonNegative.default(0) });

const toleranceSchema = z.strictObject({
  policy: z.enum(['deterministic', 'approximate']).default('approximate'),
  atol: nonNegative.default(0),
  rtol: nonNegative.default(0),
  allowedFailingSteps: z.number().int().nonnegative().default(0),
  // Absent: the metric's default envelope rule; false: never follow a measured noise.
  envelope: z.union([envelopeSchema, z.literal(false)]).optional(),
});

export const referenceEntrySchema = z.strictObject({
  name: z.string().regex(REFERENCE_NAME),
  /** Relative to the suite folder: `references/<name>.json`. */
  file: z.string().min(1),
  format: z.enum(IMPORT_FORMATS),
  /** Metric name as the source wrote it ("lm loss"). */
  metric: z.string().min(1),
  /** Our metric name it compares against ("lm_loss"). */
  ours: z.string().min(1),
  /** Steps averaged per point (1 = per-step values). */
  interval: z.number().int().positive(),
  importedAt: z.string(),
});
export type ReferenceEntry = z.infer<typeof referenceEntrySchema>;

const manifestFileSchema = z.strictObject({
  schema: z.literal(1),
  suite: z.string().min(1).optional(),
  family: z.enum(FAMILY_NAMES as [FamilyName, ...FamilyName[]]).optional(),
  // Provenance is free-form beyond these three keys (commits, seeds, devices…).
  reference: z
    .looseObject({ framework: z.string().min(1), version: z.string().optional(), notes: z.string().optional() })
    .optional(),
  tolerances: z
    .strictObject({
      forward: z
        .strictObject({
          atol: nonNegative.optional(),
          rtol: nonNegative.optional(),
          // Per reference tensor name (without the initial/ or final/ prefix), with the reason.
          tensors: z.record(z.string(), z.strictObject({ atol: nonNegative, rtol: nonNegative.default(0), reason: z.string().min(1) })).optional(),
          // With forward_*.float64.safetensors: k × the reference's own error per row; false: never.
          envelope: z.union([z.strictObject({ k: z.number().positive() }), z.literal(false)]).optional(),
        })
        .optional(),
      curve: z.record(z.string(), toleranceSchema).optional(),
      golden: toleranceSchema.optional(),
      generation: z.strictObject({ logitAtol: nonNegative.optional(), logitRtol: nonNegative.optional() }).optional(),
    })
    .optional(),
  references: z.array(referenceEntrySchema).optional(),
});

export interface Provenance {
  framework: string;
  version?: string;
  notes?: string;
  [key: string]: unknown;
}

export interface Manifest {
  schema: 1;
  suite: string;
  family: FamilyName;
  reference: Provenance;
  tolerances: {
    forward: { atol: number; rtol: number; tensors: Record<string, { atol: number; rtol: number; reason: string }>; envelope?: { k: number } };
    curve: Record<string, CurveTolerance>;
    golden: CurveTolerance;
    generation: { logitAtol: number; logitRtol: number };
  };
  references: ReferenceEntry[];
  /** The manifest file read, or null when the folder has none and everything is a default. */
  file: string | null;
}

/** Reads `<suiteDir>/manifest.json`, filling every absent key with the defaults. */
export function loadManifest(suiteDir: string): Manifest {
  const file = join(suiteDir, MANIFEST_FILE);
  const present = existsSync(file);
  const raw = present ? readJsonFile(file) : { schema: 1 };
  const parsed = manifestFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InputError(describeZodIssue(parsed.error), { file, cause: parsed.error });
  }
  const m = parsed.data;
  const names = new Set<string>();
  for (const r of m.references ?? []) {
    if (names.has(r.name)) throw new InputError(`key references: name ${JSON.stringify(r.name)} appears twice`, { file });
    names.add(r.name);
  }
  const curve: Record<string, CurveTolerance> = { ...DEFAULT_CURVE_TOLERANCES };
  for (const [metric, tol] of Object.entries(m.tolerances?.curve ?? {})) curve[metric] = normalise(tol, defaultFor(metric)?.envelope);
  return {
    schema: 1,
    suite: m.suite ?? basename(resolve(suiteDir)),
    family: m.family ?? deriveFamily(suiteDir),
    reference: m.reference ?? defaultProvenance(suiteDir),
    tolerances: {
      forward: {
        atol: m.tolerances?.forward?.atol ?? FORWARD_ATOL,
        rtol: m.tolerances?.forward?.rtol ?? FORWARD_RTOL,
        tensors: m.tolerances?.forward?.tensors ?? {},
        ...(m.tolerances?.forward?.envelope === false ? {} : { envelope: m.tolerances?.forward?.envelope ?? FORWARD_ENVELOPE }),
      },
      curve,
      golden: m.tolerances?.golden ? normalise(m.tolerances.golden) : GOLDEN_TOLERANCE,
      generation: { logitAtol: m.tolerances?.generation?.logitAtol ?? GENERATION_LOGIT_ATOL, logitRtol: m.tolerances?.generation?.logitRtol ?? GENERATION_LOGIT_RTOL },
    },
    references: m.references ?? [],
    file: present ? file : null,
  };
}

/**
 * The tolerance for one of our metrics. Loss parts (`mlm_loss`, `binary_loss`, …) that the
 * manifest does not list share the total loss's: they are the same kind of number.
 */
export function curveToleranceFor(manifest: Manifest, metric: string): CurveTolerance | undefined {
  const own = manifest.tolerances.curve[metric];
  if (own) return own;
  if (metric.endsWith('_loss')) return manifest.tolerances.curve.loss;
  return undefined;
}

/** The default tolerance of a metric: its own, or the total loss's for a loss part. */
function defaultFor(metric: string): CurveTolerance | undefined {
  return DEFAULT_CURVE_TOLERANCES[metric] ?? (metric.endsWith('_loss') ? DEFAULT_CURVE_TOLERANCES.loss : undefined);
}

/**
 * A deterministic tolerance ignores atol/rtol; keep them 0 so reports do not suggest otherwise.
 * An approximate one keeps the default envelope rule unless it names its own or turns it off.
 */
function normalise(tol: z.infer<typeof toleranceSchema>, defaultEnvelope?: EnvelopeRule): CurveTolerance {
  if (tol.policy === 'deterministic') return DETERMINISTIC;
  const { envelope, ...plain } = tol;
  const rule = envelope === false ? undefined : (envelope ?? defaultEnvelope);
  return rule ? { ...plain, envelope: rule } : plain;
}

/** Without a manifest, the HF config at least says which transformers wrote it. */
function defaultProvenance(suiteDir: string): Provenance {
  const configFile = join(suiteDir, 'config.json');
  if (existsSync(configFile)) {
    const config = readJsonFile(configFile) as Record<string, unknown>;
    if (typeof config.transformers_version === 'string') {
      return { framework: 'transformers', version: config.transformers_version };
    }
  }
  return { framework: 'unknown' };
}


/**
 * Adds (or replaces, by name) one imported reference in manifest.json, editing the file's own JSON
 * so that every key the user wrote stays as written and absent keys stay defaults. A folder
 * without a manifest gets a minimal one.
 */
export function registerReference(suiteDir: string, entry: ReferenceEntry): void {
  const file = join(suiteDir, MANIFEST_FILE);
  referenceEntrySchema.parse(entry);
  const raw = (existsSync(file) ? readJsonFile(file) : { schema: 1 }) as Record<string, unknown>;
  const kept = Array.isArray(raw.references)
    ? raw.references.filter((r: unknown) => (r as { name?: unknown } | null)?.name !== entry.name)
    : [];
  raw.references = [...kept, entry];
  writeFileAtomic(file, `${JSON.stringify(raw, null, 2)}\n`);
}
