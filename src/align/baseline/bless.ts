/**
 * `baseline bless`: make a run's curve this backend's golden. The only way a golden changes, and
 * every change leaves a reason and a before/after summary in history.jsonl (Megatron's golden
 * updates go through review with a KL/Δ summary for the same reason).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readCurve, type Curve } from '../curve.ts';
import { InputError } from '../../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { assertFiniteCurve } from './finite.ts';
import { goldenPath, parseGolden, serializeGolden, type Golden } from './golden.ts';
import { appendHistory, timestamp, type HistoryEntry } from './history.ts';
import { describeZodIssue, readBytes, readJsonFile, sha256 } from '../../json-file.ts';
import { loadManifest } from './manifest.ts';
import { displayPath } from './paths.ts';

export interface BlessOptions {
  suiteDir: string;
  /** Run folder of an align run: holds verdict.json and curve.json. */
  runDir: string;
  reason: string | undefined;
  /** Bless a failed run, a run of another suite, or over an unreadable golden. */
  force: boolean;
}

export interface GoldenSummary {
  steps: number;
  finalLoss: number | null;
  sha256: string;
}

export interface BlessResult {
  file: string;
  golden: Golden;
  history: HistoryEntry;
}

/** The part of verdict.json bless relies on; the rest of the Verdict contract is not checked here. */
const runVerdictSchema = z.looseObject({
  suite: z.string(),
  backend: z.string(),
  pass: z.boolean(),
  // A GPU run's golden is keyed by its device class too (environment.goldenKey); older verdicts lack it.
  environment: z.looseObject({ goldenKey: z.string().optional() }).optional(),
});

/** A golden changes only with a stated reason: it is what a reviewer reads in history.jsonl. */
export function requireReason(reason: string | undefined): string {
  const trimmed = reason?.trim() ?? '';
  if (trimmed === '') {
    throw new InputError('--reason is required: say why this golden changes (it goes into history.jsonl)', {
      expected: '--reason "…"',
      actual: reason === undefined ? 'no --reason' : 'an empty reason',
    });
  }
  return trimmed;
}

export function bless(opts: BlessOptions): BlessResult {
  const reason = requireReason(opts.reason);
  const verdictFile = join(opts.runDir, 'verdict.json');
  const parsed = runVerdictSchema.safeParse(readJsonFile(verdictFile));
  if (!parsed.success) {
    throw new InputError(describeZodIssue(parsed.error), { file: verdictFile, cause: parsed.error });
  }
  const verdict = parsed.data;
  if (!verdict.pass && !opts.force) {
    throw new InputError('the run failed (verdict.pass is false); a failed run becomes a golden only with --force', { file: verdictFile });
  }
  const manifest = loadManifest(opts.suiteDir);
  if (verdict.suite !== manifest.suite && !opts.force) {
    throw new InputError(`the run is of suite ${JSON.stringify(verdict.suite)}, not ${JSON.stringify(manifest.suite)}; use --force if that is intended`, {
      file: verdictFile,
      tensor: 'suite',
      expected: manifest.suite,
      actual: verdict.suite,
    });
  }
  const curveFile = join(opts.runDir, 'curve.json');
  const curve = readCurve(curveFile);
  assertFiniteCurve(curve, curveFile);
  if (curve.steps.length === 0) throw new InputError('the run has no steps', { file: curveFile });

  const key = verdict.environment?.goldenKey ?? verdict.backend;
  const file = goldenPath(opts.suiteDir, key);
  const old = readOldGolden(file, opts.force);

  const golden: Golden = {
    schema: 1,
    suite: manifest.suite,
    backend: key,
    createdAt: timestamp(),
    fromRun: displayPath(opts.runDir),
    reason,
    steps: curve.steps.length,
    curve,
  };
  const text = serializeGolden(golden);
  const next: GoldenSummary = { steps: golden.steps, finalLoss: finalLoss(curve), sha256: sha256(text) };

  writeFileAtomic(file, text);
  const history: HistoryEntry = {
    when: golden.createdAt,
    action: 'bless',
    backend: key,
    fromRun: golden.fromRun,
    reason,
    ...(opts.force ? { forced: true, runPass: verdict.pass } : {}),
    old: old?.summary ?? null,
    new: next,
    summary: summarise(old?.golden ?? null, curve),
  };
  appendHistory(opts.suiteDir, history);
  return { file, golden, history };
}

function readOldGolden(file: string, force: boolean): { golden: Golden | null; summary: GoldenSummary } | null {
  if (!existsSync(file)) return null;
  const bytes = readBytes(file);
  try {
    const golden = parseGolden(bytes.toString('utf8'), file);
    return { golden, summary: { steps: golden.steps, finalLoss: finalLoss(golden.curve), sha256: sha256(bytes) } };
  } catch (error) {
    // Replacing a golden we cannot read loses whatever it held: only on request.
    if (!force) throw new InputError('the existing golden is unreadable; replace it only with --force', { file, cause: error });
    return { golden: null, summary: { steps: 0, finalLoss: null, sha256: sha256(bytes) } };
  }
}

function finalLoss(curve: Curve): number | null {
  const loss = curve.metrics.loss;
  return loss && loss.length > 0 ? loss[loss.length - 1] : null;
}

/** "max|Δloss| vs old golden …" over the steps both curves have, the way a reviewer reads a re-bless. */
export function summarise(old: Golden | null, ours: Curve): string {
  if (old === null) return `first golden: ${ours.steps.length} steps, final loss ${String(finalLoss(ours))}`;
  const oldLoss = old.curve.metrics.loss ?? [];
  const newLoss = ours.metrics.loss ?? [];
  const at = new Map<number, number>();
  ours.steps.forEach((s, i) => at.set(s, i));
  let maxDiff = 0;
  let maxStep: number | null = null;
  let common = 0;
  let differing = 0;
  old.curve.steps.forEach((s, i) => {
    const j = at.get(s);
    if (j === undefined || oldLoss[i] === undefined || newLoss[j] === undefined) return;
    common++;
    const d = Math.abs(newLoss[j] - oldLoss[i]);
    if (d !== 0) differing++;
    if (maxStep === null || d > maxDiff) {
      maxDiff = d;
      maxStep = s;
    }
  });
  return (
    `max|Δloss| vs old golden ${maxDiff.toExponential(3)} at step ${String(maxStep)}; ` +
    `${differing} of ${common} common steps differ; steps ${old.steps} → ${ours.steps.length}; ` +
    `final loss ${String(finalLoss(old.curve))} → ${String(finalLoss(ours))}`
  );
}
