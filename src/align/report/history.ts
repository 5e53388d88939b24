/**
 * `reports/history.jsonl`: one line per run folder (night, suite, backend, step count), so the
 * dashboard can plot any metric across nights without reopening old run folders. A suite that
 * could not run (unusable input, crash, a CI leg that left nothing) still gets a line, with `error`
 * set, and an `error.json` in its run folder: a night where a suite silently vanished would read as
 * "nothing changed".
 *
 * Lines are upserted by `historyKey`: a rerun of the same run folder (a CI job re-run, the dashboard
 * merge run twice) replaces its line instead of adding one, so the file holds no duplicates however
 * often the same night is merged. The file is rewritten atomically for that (writeFileReplacing).
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { InputError } from '../../errors.ts';
import type { Curve } from '../curve.ts';
import type { RunReportInput } from './html.ts';
import { RUN_FILES, readRunFolder, writeFileReplacing } from './write.ts';

export const HISTORY_FILE = 'history.jsonl';
/** Written instead of verdict.json into the run folder of a suite that could not run. */
export const ERROR_FILE = 'error.json';

export interface HistoryEntry {
  /** The night, UTC `YYYY-MM-DD`. */
  date: string;
  suite: string;
  pass: boolean;
  backend: string;
  /**
   * The `--steps` the run was asked for; null: the whole reference curve (the nightly's standard
   * run, the only kind the dashboard's main table, plots and grid show). A shorter run is recorded
   * as such, so a 50-step run by hand never stands in for the night's full one. Lines written
   * before this field existed read as null.
   */
  steps: number | null;
  /** Our last loss value. null: no training, or a non-finite loss (JSON has no NaN/Infinity). */
  finalLoss: number | null;
  /** Loss max|diff| against the reference; null as for finalLoss. */
  maxAbsDiff: number | null;
  forwardMaxAbsDiff: number | null;
  msPerStep: number | null;
  /** The run folder, relative to the reports folder, '/'-separated (links work once published); "" when there is none. */
  runDir: string;
  /** Set when the suite could not run: why. `pass` is then false. */
  error?: string;
}

export type RunStatus = 'pass' | 'fail' | 'error';

export function statusOf(entry: Pick<HistoryEntry, 'pass' | 'error'>): RunStatus {
  if (entry.error !== undefined) return 'error';
  return entry.pass ? 'pass' : 'fail';
}

export interface RunError {
  suite: string;
  /** The backend asked for, or "auto" when the runner was left to choose and never reported one. */
  backend: string;
  date: string;
  /** The `--steps` asked for; null (or absent in files written before it existed): the whole curve. */
  steps: number | null;
  message: string;
  exitCode: number;
}

/** What a nightly run folder's name says: the backend asked for and the step count asked for. */
export interface RunDirName {
  /** The backend asked for, or "auto". */
  backend: string;
  steps: number | null;
}

const STEPS_SUFFIX = /^(.+)-(\d+)steps$/;

/**
 * The nightly's run folder name under `<night>/<suite>/`: the backend asked for (`auto` when the
 * runner picks), with `-<N>steps` when a step count was asked for. The CPU and GPU runs of one night
 * land side by side, a rerun replaces only its own folder, and a short run by hand never lands in
 * the folder of the night's full run.
 */
export function runDirName(backend: string | undefined, steps: number | null | undefined): string {
  const name = backend || 'auto';
  return steps === undefined || steps === null ? name : `${name}-${steps}steps`;
}

/** The inverse of runDirName; a name without the suffix is a full run on that backend. */
export function parseRunDirName(name: string): RunDirName {
  const m = STEPS_SUFFIX.exec(name);
  return m ? { backend: m[1], steps: Number(m[2]) } : { backend: name, steps: null };
}

export function isoDate(at: Date): string {
  return at.toISOString().slice(0, 10);
}

export const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

const finiteOrNull = (x: number | null | undefined): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

export function finalLoss(curve: Curve | undefined): number | null {
  const loss = curve?.metrics.loss;
  return loss && loss.length > 0 ? finiteOrNull(loss[loss.length - 1]) : null;
}

export function relativeRunDir(reportsDir: string, runDir: string): string {
  return relative(reportsDir, runDir).split(sep).join('/');
}

export function historyEntryFromRun(run: RunReportInput, where: { date: string; runDir: string; steps: number | null }): HistoryEntry {
  const { verdict } = run;
  const train = verdict.train;
  const loss = train?.metrics.find((m) => m.metric === 'loss');
  return {
    date: where.date,
    suite: verdict.suite,
    pass: verdict.pass,
    backend: verdict.backend,
    steps: where.steps,
    finalLoss: finalLoss(run.curve),
    maxAbsDiff: finiteOrNull(loss?.maxAbsDiff ?? train?.maxAbsDiff),
    forwardMaxAbsDiff: finiteOrNull(verdict.forward?.maxAbsDiff),
    msPerStep: finiteOrNull(train?.msPerStep),
    runDir: where.runDir,
  };
}

export function historyEntryFromError(error: RunError, runDir: string): HistoryEntry {
  return {
    date: error.date,
    suite: error.suite,
    pass: false,
    backend: error.backend,
    steps: error.steps,
    finalLoss: null,
    maxAbsDiff: null,
    forwardMaxAbsDiff: null,
    msPerStep: null,
    runDir,
    error: error.message,
  };
}

export async function writeRunError(runDir: string, error: RunError): Promise<void> {
  await mkdir(runDir, { recursive: true });
  await writeFileReplacing(join(runDir, ERROR_FILE), `${JSON.stringify(error, null, 2)}\n`);
}

export function readRunError(file: string): RunError {
  let json: Partial<RunError>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Partial<RunError>;
  } catch (cause) {
    throw new InputError('cannot read run error', { file, cause });
  }
  if (typeof json.suite !== 'string' || typeof json.message !== 'string' || typeof json.date !== 'string') {
    throw new InputError('not a Parity run error: needs "suite", "date" and "message" strings', { file });
  }
  const steps = json.steps === undefined || json.steps === null ? null : json.steps;
  if (steps !== null && !(Number.isSafeInteger(steps) && steps >= 1)) throw new InputError('"steps" is neither a positive integer nor null', { file, actual: String(steps) });
  return { suite: json.suite, backend: typeof json.backend === 'string' ? json.backend : 'auto', date: json.date, steps, message: json.message, exitCode: typeof json.exitCode === 'number' ? json.exitCode : 2 };
}

/**
 * The history line for a run folder on disk: from its verdict and curve, or from its error.json.
 * `steps` is what the run was asked for (from the nightly folder name, see placeOf); an error.json
 * says it itself.
 */
export function runFolderEntry(runDir: string, where: { date: string; reportsDir: string; steps: number | null }): HistoryEntry {
  const rel = relativeRunDir(where.reportsDir, runDir);
  // error.json first: a runner that threw after writing its verdict did not finish that run.
  if (existsSync(join(runDir, ERROR_FILE))) return historyEntryFromError({ ...readRunError(join(runDir, ERROR_FILE)), date: where.date }, rel);
  if (existsSync(join(runDir, RUN_FILES.verdict))) return historyEntryFromRun(readRunFolder(runDir), { date: where.date, runDir: rel, steps: where.steps });
  throw new InputError(`run folder holds neither ${RUN_FILES.verdict} nor ${ERROR_FILE}`, { file: runDir });
}

/**
 * Which lines are the same run: the night, the suite and the run folder when there is one (unique
 * per backend asked for and step count, and the same when a run first errors and then, re-run,
 * reports the backend it chose); without a run folder, the backend and step count instead.
 */
export function historyKey(e: Pick<HistoryEntry, 'date' | 'suite' | 'backend' | 'steps' | 'runDir'>): string {
  const run = e.runDir !== '' ? `dir ${e.runDir}` : `backend ${e.backend} steps ${e.steps ?? 'full'}`;
  return `${e.date}\u0000${e.suite}\u0000${run}`;
}

/** One append per line (tests and hand-made histories); the nightly and the merge use upsertHistory. */
export async function appendHistory(file: string, entries: readonly HistoryEntry[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  for (const entry of entries) await appendFile(file, `${JSON.stringify(entry)}\n`, 'utf8');
}

/**
 * Adds `entries`, each replacing any earlier line with its historyKey (and, within `entries`, a
 * later one the earlier), so merging the same night twice leaves the file as merging it once. The
 * file is rewritten through a temporary file and a rename: a crash leaves the old history or the
 * new one, never half of it. Returns the lines now in the file.
 */
export async function upsertHistory(file: string, entries: readonly HistoryEntry[]): Promise<HistoryEntry[]> {
  const incoming = new Map<string, HistoryEntry>();
  for (const e of entries) {
    incoming.delete(historyKey(e));
    incoming.set(historyKey(e), e);
  }
  const kept = readHistory(file).filter((e) => !incoming.has(historyKey(e)));
  const all = [...kept, ...incoming.values()];
  await mkdir(dirname(file), { recursive: true });
  await writeFileReplacing(file, all.map((e) => `${JSON.stringify(e)}\n`).join(''));
  return all;
}

function checkEntry(json: unknown): string | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'not a JSON object';
  const e = json as Record<string, unknown>;
  if (typeof e.date !== 'string' || !DATE_PATTERN.test(e.date)) return '"date" is not YYYY-MM-DD';
  for (const key of ['suite', 'backend', 'runDir']) if (typeof e[key] !== 'string') return `"${key}" is not a string`;
  if (typeof e.pass !== 'boolean') return '"pass" is not a boolean';
  for (const key of ['finalLoss', 'maxAbsDiff', 'forwardMaxAbsDiff', 'msPerStep']) {
    if (e[key] !== null && typeof e[key] !== 'number') return `"${key}" is neither a number nor null`;
  }
  if (e.error !== undefined && typeof e.error !== 'string') return '"error" is not a string';
  if (e.steps !== undefined && e.steps !== null && !(Number.isSafeInteger(e.steps) && (e.steps as number) >= 1)) return '"steps" is neither a positive integer nor null';
  return null;
}

/** All history lines, oldest first; [] when the file does not exist yet. */
export function readHistory(file: string): HistoryEntry[] {
  if (!existsSync(file)) return [];
  const entries: HistoryEntry[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch (cause) {
        throw new InputError(`line ${i + 1} is not valid JSON`, { file, cause });
      }
      const problem = checkEntry(json);
      if (problem) throw new InputError(`line ${i + 1}: ${problem}`, { file });
      const entry = json as HistoryEntry;
      entries.push({ ...entry, steps: entry.steps ?? null });
    });
  return entries;
}
