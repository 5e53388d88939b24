/**
 * Merging run folders into a reports tree: CI's nightly legs each upload their run folder as an
 * artifact, and the merge job copies them under `reports/nightly/<night>/`, records a history line
 * per run (and per expected leg that left nothing), prunes old nights and renders the dashboard.
 * Idempotent, so a re-run of any job (a leg that uploads again, the merge itself) leaves the same
 * tree and history as one run.
 */
import { cpSync, existsSync, lstatSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { InputError } from '../../errors.ts';
import { writeDashboard } from './dashboard.ts';
import {
  type HistoryEntry,
  DATE_PATTERN,
  ERROR_FILE,
  HISTORY_FILE,
  type RunError,
  historyEntryFromError,
  isoDate,
  parseRunDirName,
  readRunError,
  relativeRunDir,
  runDirName,
  runFolderEntry,
  upsertHistory,
  writeRunError,
} from './history.ts';
import { RUN_FILES, copyPlotlyBundle, readRunFolder, readVerdict, writeHtmlReport } from './write.ts';

/**
 * Removes `<reportsDir>/nightly/<night>/` folders beyond the newest `keepNights` (the history keeps
 * their lines). Returns the nights removed.
 */
export async function pruneNights(reportsDir: string, keepNights: number): Promise<string[]> {
  const nightly = join(reportsDir, 'nightly');
  if (!existsSync(nightly)) return [];
  const nights = readdirSync(nightly)
    .filter((n) => DATE_PATTERN.test(n) && lstatSync(join(nightly, n)).isDirectory())
    .sort()
    .reverse();
  const removed = nights.slice(keepNights);
  for (const n of removed) await rm(join(nightly, n), { recursive: true, force: true });
  return removed;
}

/** Every folder under `dir` holding a verdict.json or an error.json (not descending into them). */
export function findRunFolders(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    const names = readdirSync(d);
    if (names.includes(RUN_FILES.verdict) || names.includes(ERROR_FILE)) {
      found.push(d);
      return;
    }
    for (const name of names.sort()) {
      const path = join(d, name);
      // Artifacts are plain trees; a symlink could loop or leave the folder.
      if (lstatSync(path).isDirectory()) walk(path);
    }
  };
  walk(dir);
  return found;
}

/** Index of the last `YYYY-MM-DD` path segment, or -1 (Array.findLastIndex is ES2023). */
function lastNightSegment(segments: readonly string[]): number {
  for (let i = segments.length - 1; i >= 0; i--) if (DATE_PATTERN.test(segments[i])) return i;
  return -1;
}

/** The suite a run folder belongs to, from its verdict.json or error.json. */
function suiteOf(runDir: string): string {
  if (existsSync(join(runDir, ERROR_FILE))) return readRunError(join(runDir, ERROR_FILE)).suite;
  return readVerdict(join(runDir, RUN_FILES.verdict)).suite;
}

export interface Place {
  date: string;
  /** Below `nightly/<date>/`, '/'-separated. */
  path: string;
  /** The step count the run was asked for; null: the whole reference curve. */
  steps: number | null;
}

/**
 * Where a run folder belongs under `reports/nightly/`: its night, its path below that night and
 * the step count it was asked for. A folder already laid out by the nightly
 * (`…/<YYYY-MM-DD>/<suite>/<backend>[-<N>steps]/`) keeps its path below the date, and its name says
 * the step count; any other (an align run's `<suite>/<timestamp>/`) goes to
 * `<night its verdict started>/<suite>/<folder name>`, and since nothing says what it was asked
 * for, the steps it trained count as asked (a full align run then reads as a "shorter run" rather
 * than a short one passing for the night's full run).
 */
export function placeOf(runDir: string, root: string): Place {
  const segments = relative(root, runDir).split(sep);
  const at = lastNightSegment(segments);
  const errorFile = join(runDir, ERROR_FILE);
  if (at >= 0) {
    const below = segments.slice(at + 1);
    const path = below.join('/') || suiteOf(runDir);
    const steps = existsSync(errorFile) ? readRunError(errorFile).steps : below.length >= 2 ? parseRunDirName(below[below.length - 1]).steps : null;
    return { date: segments[at], path, steps };
  }
  const path = `${suiteOf(runDir)}/${basename(runDir)}`;
  if (existsSync(errorFile)) {
    const e = readRunError(errorFile);
    return { date: e.date, path, steps: e.steps };
  }
  const verdict = readVerdict(join(runDir, RUN_FILES.verdict));
  const started = Date.parse(verdict.startedAt);
  if (!Number.isFinite(started)) throw new InputError('cannot tell which night this run belongs to: startedAt is not a date', { file: runDir });
  return { date: isoDate(new Date(started)), path, steps: verdict.train?.steps ?? null };
}

/** The CI matrix a merge expects: every suite × backend, asked for `steps` (null: the whole curve). */
export interface ExpectedLegs {
  suites: readonly string[];
  backends: readonly string[];
  steps: number | null;
}

export interface MergeOptions {
  /** The night of every merged folder (CI: the date its setup job read). Required with `expect`. */
  date?: string;
  /** Legs the matrix ran: one that left no run folder gets an error line and an error.json. */
  expect?: ExpectedLegs;
  /** Keep run folders of the newest this many nights under reports/nightly/ (and link only those). */
  keepNights?: number;
  /** Said in the error of a missing leg: where its job's log is (the CI run). */
  runUrl?: string;
}

export interface MergeResult {
  entries: HistoryEntry[];
  /** Run folders that could not be read; each also has an error line in the history. */
  unusable: string[];
  /** Expected legs (`<suite>/<run folder name>`) that left no run folder; each has an error line. */
  missing: string[];
}

/**
 * Copies every run folder found under `incomingDir` to `<reportsDir>/nightly/<night>/…` (placeOf),
 * relinks its report to the one shared plotly bundle, writes an error.json for every expected leg
 * that left nothing, upserts a history line per run and renders the dashboard. Used by CI to merge
 * the artifacts of independent matrix jobs.
 *
 * Idempotent: merging the same artifacts again (a re-run of the merge job, or of a leg that
 * uploaded again) replaces run folders and history lines instead of adding to them.
 */
export async function mergeRunFolders(incomingDir: string, reportsDir: string, options: MergeOptions = {}): Promise<MergeResult> {
  const { expect } = options;
  if (expect && options.date === undefined) throw new InputError('expected legs need the night they ran (--date)', { expected: 'YYYY-MM-DD' });
  const incomingExists = existsSync(incomingDir) && lstatSync(incomingDir).isDirectory();
  // With an expected matrix, nothing arriving is a result (every leg died); without one it is a wrong path.
  if (!incomingExists && !expect) throw new InputError('no such folder of run folders', { file: incomingDir });
  const folders = incomingExists ? findRunFolders(incomingDir) : [];
  if (folders.length === 0 && !expect) throw new InputError(`no run folders (with ${RUN_FILES.verdict} or ${ERROR_FILE}) found`, { file: incomingDir });
  const sharedPlotly = await copyPlotlyBundle(reportsDir);
  const entries: HistoryEntry[] = [];
  const unusable: string[] = [];
  const missing: string[] = [];
  const taken = new Map<string, string>();
  for (const folder of folders) {
    let date = options.date ?? '';
    // Where this folder's run goes; undefined until known, and for a second folder with the same place.
    let target: string | undefined;
    let duplicate = false;
    try {
      const place = placeOf(folder, incomingDir);
      date ||= place.date;
      const wanted = join(reportsDir, 'nightly', date, ...place.path.split('/'));
      const other = taken.get(resolve(wanted));
      duplicate = other !== undefined;
      if (other) throw new InputError(`two run folders map to ${wanted}`, { file: folder, expected: 'one run per night, suite, backend and step count', actual: `also ${other}` });
      target = wanted;
      taken.set(resolve(target), folder);
      if (resolve(folder) !== resolve(target)) {
        await rm(target, { recursive: true, force: true });
        cpSync(folder, target, { recursive: true });
      }
      if (!existsSync(join(target, ERROR_FILE))) await writeHtmlReport(target, readRunFolder(target), sharedPlotly);
      entries.push(runFolderEntry(target, { date, reportsDir, steps: place.steps }));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      unusable.push(folder);
      let place = duplicate ? null : (target ?? nightlyPlace(folder, incomingDir, reportsDir, date || isoDate(new Date())));
      // A place another folder already took keeps that folder's run.
      if (place !== null && target === undefined && taken.has(resolve(place))) place = null;
      if (place !== null) taken.set(resolve(place), folder);
      entries.push(await unusableEntry(folder, incomingDir, place, date || isoDate(new Date()), error, reportsDir));
    }
  }
  if (expect) {
    for (const suite of expect.suites) {
      for (const backend of expect.backends) {
        const name = runDirName(backend, expect.steps);
        const target = join(reportsDir, 'nightly', options.date!, suite, name);
        // Merged now, or by an earlier merge into this reports folder: the leg left its run.
        if (taken.has(resolve(target)) || existsSync(target)) continue;
        missing.push(`${suite}/${name}`);
        const message = `no result from this leg: its CI job left no run folder (it died before writing one, timed out, or its artifact was not uploaded)${options.runUrl ? `; see ${options.runUrl}` : ''}`;
        const runError: RunError = { suite, backend, date: options.date!, steps: expect.steps, message, exitCode: 2 };
        await writeRunError(target, runError);
        entries.push(historyEntryFromError(runError, relativeRunDir(reportsDir, target)));
      }
    }
  }
  await upsertHistory(join(reportsDir, HISTORY_FILE), entries);
  if (options.keepNights !== undefined) await pruneNights(reportsDir, options.keepNights);
  await writeDashboard(reportsDir, new Date(), { keepNights: options.keepNights });
  return { entries, unusable, missing };
}

/** The place of a folder laid out by the nightly (`…/<night>/<suite>/<run>/`) from its path alone, or null. */
function nightlyPlace(folder: string, incomingDir: string, reportsDir: string, date: string): string | null {
  const segments = relative(incomingDir, folder).split(sep);
  const at = lastNightSegment(segments);
  return at >= 0 && segments.length - at - 1 === 2 ? join(reportsDir, 'nightly', date, ...segments.slice(at + 1)) : null;
}

/**
 * The line for a run folder that cannot be merged. When its place is known (it was copied, or the
 * nightly layout of its path says which run it was) it gets an error.json there, replacing what was
 * copied or merged before, so a re-run's good folder replaces this line again. Otherwise (another
 * folder took its place, or the path says nothing) it has no run folder (runDir "") and the row
 * shows the error without a link.
 */
async function unusableEntry(folder: string, incomingDir: string, place: string | null, date: string, error: InputError, reportsDir: string): Promise<HistoryEntry> {
  const segments = relative(incomingDir, folder).split(sep);
  const at = lastNightSegment(segments);
  const suite = segments[at + 1] ?? basename(folder);
  const named = at >= 0 && segments.length - at - 1 === 2 ? parseRunDirName(segments[segments.length - 1]) : { backend: 'unknown', steps: null };
  const runError: RunError = { suite, backend: named.backend, date, steps: named.steps, message: error.message, exitCode: error.exitCode };
  if (place === null) return historyEntryFromError(runError, '');
  await rm(place, { recursive: true, force: true });
  await writeRunError(place, runError);
  return historyEntryFromError(runError, relativeRunDir(reportsDir, place));
}
