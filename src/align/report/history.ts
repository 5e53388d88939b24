/**
 * `reports/history.jsonl`: one line per (night, suite) run, appended, never rewritten, so the
 * dashboard can plot any metric across nights without reopening old run folders. A suite that
 * could not run (unusable input, crash) still gets a line, with `error` set, and an `error.json`
 * in its run folder: a night where a suite silently vanished would read as "nothing changed".
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
  message: string;
  exitCode: number;
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

export function historyEntryFromRun(run: RunReportInput, where: { date: string; runDir: string }): HistoryEntry {
  const { verdict } = run;
  const train = verdict.train;
  const loss = train?.metrics.find((m) => m.metric === 'loss');
  return {
    date: where.date,
    suite: verdict.suite,
    pass: verdict.pass,
    backend: verdict.backend,
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
  return { suite: json.suite, backend: typeof json.backend === 'string' ? json.backend : 'auto', date: json.date, message: json.message, exitCode: typeof json.exitCode === 'number' ? json.exitCode : 2 };
}

/** The history line for a run folder on disk: from its verdict and curve, or from its error.json. */
export function runFolderEntry(runDir: string, where: { date: string; reportsDir: string }): HistoryEntry {
  const rel = relativeRunDir(where.reportsDir, runDir);
  // error.json first: a runner that threw after writing its verdict did not finish that run.
  if (existsSync(join(runDir, ERROR_FILE))) return historyEntryFromError({ ...readRunError(join(runDir, ERROR_FILE)), date: where.date }, rel);
  if (existsSync(join(runDir, RUN_FILES.verdict))) return historyEntryFromRun(readRunFolder(runDir), { date: where.date, runDir: rel });
  throw new InputError(`run folder holds neither ${RUN_FILES.verdict} nor ${ERROR_FILE}`, { file: runDir });
}

/** One append per line: a crash mid-night leaves the lines of the suites that finished. */
export async function appendHistory(file: string, entries: readonly HistoryEntry[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  for (const entry of entries) await appendFile(file, `${JSON.stringify(entry)}\n`, 'utf8');
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
      entries.push(json as HistoryEntry);
    });
  return entries;
}
