/**
 * The nightly check: every suite in `baselines/` that has reference curves or forward tensors is
 * aligned in full, each into `reports/nightly/<YYYY-MM-DD>/<suite>/<backend>/` (`auto` when the
 * runner picks the backend; `<backend>-<N>steps` for a run asked to stop after N steps); one history
 * line per suite is upserted into `reports/history.jsonl` and `reports/index.html` is re-rendered.
 *
 * Suites are independent: one that cannot run (unusable input, a crash) is recorded with an
 * error.json and an error history line, and the others still run. Exit code, worst first:
 * 70 an internal fault, 2 an unusable input, 1 a misaligned suite, 0 all aligned. (These are
 * ordered as numbers, so the night's code is the maximum of the suites' codes.)
 *
 * The align runner is injected (`SuiteRunner`), so tests drive the whole night with a fake one.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_MISALIGNED, EXIT_PASS, InputError, exitCodeOf } from '../errors.ts';
import type { Verdict } from './verdict.ts';
import { readCurve } from './curve.ts';
import type { RunSuiteOptions as AlignOptions } from './run-suite.ts';
import { writeDashboard } from './report/dashboard.ts';
import { DATE_PATTERN, HISTORY_FILE, type HistoryEntry, historyEntryFromError, historyEntryFromRun, isoDate, relativeRunDir, runDirName, statusOf, upsertHistory, writeRunError } from './report/history.ts';
import { RUN_FILES, copyPlotlyBundle, writeHtmlReport, writeRunReports } from './report/write.ts';

/** The options of `runSuite` (src/align/run-suite.ts) the nightly sets. */
export type RunSuiteOptions = Pick<AlignOptions, 'suiteDir' | 'steps' | 'backend' | 'reportsDir' | 'runDirName' | 'log'>;

/**
 * Runs one suite and writes its run folder `<reportsDir>/<suite folder name>/<runDirName>/`
 * (verdict.json, curve.json, reference-curve.json and, through writeRunReports, the reports).
 * Throws InputError for an unusable suite. `runSuite` is one; tests inject fakes.
 */
export type SuiteRunner = (options: RunSuiteOptions) => Promise<{ verdict: Verdict; runDir: string }>;

/** Files whose presence makes a folder a suite the nightly can check against a reference. */
const CURVE_FILE = 'train_curve.json';
const FORWARD_FILE = /^forward_.+\.safetensors$/;

/** True when `dir` holds a reference curve or reference forward tensors (forward_*.safetensors). */
export function hasReferences(dir: string): boolean {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return false;
  return readdirSync(dir).some((name) => name === CURVE_FILE || FORWARD_FILE.test(name));
}

/**
 * The suite folder names to run, in order: the requested ones (each must be a suite), else every
 * suite folder in `baselinesDir`, sorted. A named suite that is not one is a flag error, raised
 * before anything runs.
 */
export function selectSuites(baselinesDir: string, requested?: readonly string[]): string[] {
  if (!existsSync(baselinesDir)) throw new InputError('baselines folder not found', { file: baselinesDir });
  if (requested && requested.length > 0) {
    const unique = [...new Set(requested)];
    for (const name of unique) {
      if (!hasReferences(join(baselinesDir, name))) {
        throw new InputError(`--suites names "${name}", which is not a suite folder with ${CURVE_FILE} or forward_*.safetensors`, { file: join(baselinesDir, name) });
      }
    }
    return unique;
  }
  const all = readdirSync(baselinesDir)
    .filter((name) => hasReferences(join(baselinesDir, name)))
    .sort();
  if (all.length === 0) throw new InputError(`no suite folders (with ${CURVE_FILE} or forward_*.safetensors)`, { file: baselinesDir });
  return all;
}

/**
 * The run folder's name under `<night>/<suite>/`: the backend asked for, or `auto`, with
 * `-<N>steps` when `--steps N` was given (runDirName in report/history.ts). A night's CPU and GPU
 * runs of one suite (CI matrix) land side by side, a rerun replaces only its own, and a short run
 * by hand does not overwrite the night's full one.
 */
export function nightlyRunDirName(backend?: string, steps?: number): string {
  return runDirName(backend, steps);
}

export interface NightlyOptions {
  baselinesDir: string;
  reportsDir: string;
  suites?: string[];
  steps?: number;
  backend?: string;
  runSuite: SuiteRunner;
  /**
   * The night, `YYYY-MM-DD`. CI gives every leg of a matrix the date its setup job read, so a leg
   * that starts after midnight, or is re-run the next day, still lands in its night. Default: today
   * (UTC) from `now`.
   */
  date?: string;
  /** The night's date comes from here once, so a night crossing midnight stays one night. */
  now?: () => Date;
  log?: (line: string) => void;
}

export interface SuiteOutcome {
  suite: string;
  exitCode: number;
  entry: HistoryEntry;
}

export interface NightlyResult {
  exitCode: number;
  date: string;
  outcomes: SuiteOutcome[];
  dashboard: string;
}

function readOptionalCurve(file: string) {
  return existsSync(file) ? readCurve(file) : undefined;
}

async function runOne(suite: string, date: string, nightDir: string, options: NightlyOptions, sharedPlotly: string): Promise<SuiteOutcome> {
  const log = options.log ?? (() => {});
  const runDirName = nightlyRunDirName(options.backend, options.steps);
  const steps = options.steps ?? null;
  // Where runSuite puts the run; the nightly itself uses it only to clear a rerun and for error.json.
  const expectedDir = join(nightDir, suite, runDirName);
  // A rerun the same night replaces that night's folder; stale files must not mix into the new run.
  await rm(expectedDir, { recursive: true, force: true });
  try {
    const { verdict, runDir } = await options.runSuite({
      suiteDir: join(options.baselinesDir, suite),
      steps: options.steps,
      backend: options.backend,
      reportsDir: nightDir,
      runDirName,
      log: (line) => log(`[${suite}] ${line}`),
    });
    const run = { verdict, curve: readOptionalCurve(join(runDir, RUN_FILES.curve)), referenceCurve: readOptionalCurve(join(runDir, RUN_FILES.referenceCurve)) };
    // The runner writes the reports itself; the nightly only relinks report.html to the one plotly
    // bundle in reports/ (11 MB per night per suite otherwise), or writes them if the runner did not.
    if (existsSync(join(runDir, RUN_FILES.junit))) await writeHtmlReport(runDir, run, sharedPlotly);
    else await writeRunReports(runDir, run, { sharedPlotly });
    const entry = historyEntryFromRun(run, { date, runDir: relativeRunDir(options.reportsDir, runDir), steps });
    log(`${suite}: ${verdict.pass ? 'PASS' : 'FAIL'} (${verdict.backend})`);
    return { suite, exitCode: verdict.pass ? EXIT_PASS : EXIT_MISALIGNED, entry };
  } catch (error) {
    const exitCode = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    const backend = options.backend ?? 'auto';
    const runError = { suite, backend, date, steps, message, exitCode };
    await writeRunError(expectedDir, runError);
    log(`${suite}: ${error instanceof InputError ? 'UNUSABLE INPUT' : 'INTERNAL ERROR'}: ${message}`);
    if (!(error instanceof InputError) && error instanceof Error && error.stack) log(error.stack);
    return { suite, exitCode, entry: historyEntryFromError(runError, relativeRunDir(options.reportsDir, expectedDir)) };
  }
}

export async function runNightly(options: NightlyOptions): Promise<NightlyResult> {
  const suites = selectSuites(options.baselinesDir, options.suites);
  if (options.date !== undefined && !DATE_PATTERN.test(options.date)) throw new InputError('the night must be YYYY-MM-DD', { expected: 'YYYY-MM-DD', actual: options.date });
  const date = options.date ?? isoDate((options.now ?? (() => new Date()))());
  const reportsDir = resolve(options.reportsDir);
  const nightDir = join(reportsDir, 'nightly', date);
  const sharedPlotly = await copyPlotlyBundle(reportsDir);
  const opts = { ...options, reportsDir };
  const outcomes: SuiteOutcome[] = [];
  for (const suite of suites) {
    const outcome = await runOne(suite, date, nightDir, opts, sharedPlotly);
    outcomes.push(outcome);
    // Written per suite, so a night killed halfway keeps the lines of the suites that finished; a
    // rerun of the same night replaces its suite's line rather than adding one.
    await upsertHistory(join(reportsDir, HISTORY_FILE), [outcome.entry]);
  }
  const dashboard = await writeDashboard(reportsDir);
  const exitCode = Math.max(EXIT_PASS, ...outcomes.map((o) => o.exitCode));
  return { exitCode, date, outcomes, dashboard };
}

export function summaryLines(result: NightlyResult): string[] {
  return [
    ...result.outcomes.map((o) => `${statusOf(o.entry).toUpperCase().padEnd(5)} ${o.suite}  ${o.entry.runDir}${o.entry.error ? `  (${o.entry.error})` : ''}`),
    `dashboard: ${result.dashboard}`,
  ];
}

export interface NightlyArgs {
  suites?: string[];
  steps?: number;
  backend?: string;
  date?: string;
  baselinesDir: string;
  reportsDir: string;
}

export const NIGHTLY_USAGE = 'usage: npm run nightly -- [--suites a,b] [--steps N] [--backend NAME] [--date YYYY-MM-DD] [--baselines DIR] [--reports DIR]';

export function parseNightlyArgs(argv: readonly string[]): NightlyArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        suites: { type: 'string' },
        steps: { type: 'string' },
        backend: { type: 'string' },
        date: { type: 'string' },
        baselines: { type: 'string', default: 'baselines' },
        reports: { type: 'string', default: 'reports' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (cause) {
    throw new InputError(`${(cause as Error).message}\n${NIGHTLY_USAGE}`, { cause });
  }
  let steps: number | undefined;
  if (values.steps !== undefined) {
    steps = Number(values.steps);
    if (!/^\d+$/.test(values.steps) || !Number.isSafeInteger(steps) || steps < 1) {
      throw new InputError('--steps must be a positive integer', { expected: 'an integer ≥ 1', actual: values.steps });
    }
  }
  const suites = values.suites?.split(',').map((s) => s.trim()).filter(Boolean);
  if (values.suites !== undefined && suites?.length === 0) throw new InputError('--suites names no suite', { expected: 'a,b', actual: values.suites });
  // An empty --date (a CI variable left unset) means today, like an absent one.
  const date = values.date || undefined;
  if (date !== undefined && !DATE_PATTERN.test(date)) throw new InputError('--date must be YYYY-MM-DD', { expected: 'YYYY-MM-DD', actual: date });
  return { suites, steps, backend: values.backend || undefined, date, baselinesDir: values.baselines, reportsDir: values.reports };
}
