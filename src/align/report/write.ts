/**
 * Writes the reports of one run into its run folder: `report.html` (+ the plotly bundle it
 * loads), `junit.xml`, `summary.md`; and appends the summary to `$GITHUB_STEP_SUMMARY` when CI
 * sets it. The align runner calls `writeRunReports` after writing verdict.json and the curves.
 *
 * plotly.js-dist is an 11 MB unminified bundle. Inlining it would make every report 11 MB; a copy
 * next to the report keeps each run folder self-contained (it opens from file://, survives being
 * uploaded as a CI artifact on its own). Where many runs live under one reports tree (nightly),
 * `sharedPlotly` links them all to a single copy instead.
 */
import { constants, existsSync, readFileSync, statSync } from 'node:fs';
import { appendFile, copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, sep } from 'node:path';
import { readCurve } from '../curve.ts';
import type { Verdict } from '../verdict.ts';
import { InputError } from '../../errors.ts';
import { type RunReportInput, renderRunHtml } from './html.ts';
import { renderJunit } from './junit.ts';
import { renderMarkdown } from './markdown.ts';

export type { RunReportInput } from './html.ts';

/** File names inside a run folder; the first three are written by the align runner. */
export const RUN_FILES = {
  verdict: 'verdict.json',
  curve: 'curve.json',
  referenceCurve: 'reference-curve.json',
  html: 'report.html',
  junit: 'junit.xml',
  markdown: 'summary.md',
  plotly: 'plotly.js',
} as const;

export function plotlyBundlePath(): string {
  return createRequire(import.meta.url).resolve('plotly.js-dist');
}

/** Copies the plotly bundle into `dir` unless an identical-size copy is already there. */
export async function copyPlotlyBundle(dir: string): Promise<string> {
  const source = plotlyBundlePath();
  const target = join(dir, RUN_FILES.plotly);
  if (existsSync(target) && statSync(target).size === statSync(source).size) return target;
  await mkdir(dir, { recursive: true });
  // FICLONE makes a reflink where the file system supports it and falls back to a copy.
  await copyFile(source, target, constants.COPYFILE_FICLONE);
  return target;
}

/** Readers never see half a report: write a sibling temp file, then rename over the target. */
export async function writeFileReplacing(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, text, 'utf8');
  await rename(tmp, file);
}

function toUrlPath(path: string): string {
  return path.split(sep).map(encodeURIComponent).join('/');
}

/**
 * Writes report.html. Without `sharedPlotly` the bundle is copied next to it; with it the page
 * links to that file by relative path and any copy left in the folder is removed.
 */
export async function writeHtmlReport(runDir: string, run: RunReportInput, sharedPlotly?: string): Promise<void> {
  await mkdir(runDir, { recursive: true });
  let plotlySrc: string = RUN_FILES.plotly;
  if (sharedPlotly === undefined) {
    await copyPlotlyBundle(runDir);
  } else {
    plotlySrc = toUrlPath(relative(runDir, sharedPlotly));
    if (plotlySrc !== RUN_FILES.plotly) await rm(join(runDir, RUN_FILES.plotly), { force: true });
  }
  await writeFileReplacing(join(runDir, RUN_FILES.html), renderRunHtml(run, { plotlySrc }));
}

export interface WriteRunReportsOptions {
  /** Where GITHUB_STEP_SUMMARY is looked up; the process environment unless a test passes its own. */
  env?: Record<string, string | undefined>;
  /** Link report.html to this plotly bundle instead of copying one next to it. */
  sharedPlotly?: string;
}

export async function writeRunReports(runDir: string, run: RunReportInput, options: WriteRunReportsOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  await writeHtmlReport(runDir, run, options.sharedPlotly);
  await writeFileReplacing(join(runDir, RUN_FILES.junit), renderJunit(run.verdict));
  const markdown = renderMarkdown(run.verdict);
  await writeFileReplacing(join(runDir, RUN_FILES.markdown), markdown);
  const stepSummary = env.GITHUB_STEP_SUMMARY;
  if (stepSummary) await appendFile(stepSummary, `${markdown}\n`, 'utf8');
}

/** The minimum a verdict.json must hold for the reports and the dashboard to read it. */
function checkVerdictShape(json: unknown, file: string): Verdict {
  const v = json as Partial<Verdict> | null;
  const problems: string[] = [];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('verdict is not a JSON object', { file });
  if (v.schema !== 1) problems.push(`schema ${JSON.stringify(v.schema)} (expected 1)`);
  for (const key of ['suite', 'model', 'backend', 'startedAt', 'finishedAt', 'suiteDir'] as const) {
    if (typeof v[key] !== 'string') problems.push(`"${key}" is not a string`);
  }
  if (typeof v.pass !== 'boolean') problems.push('"pass" is not a boolean');
  if (typeof v.environment !== 'object' || v.environment === null) problems.push('"environment" is missing');
  if (problems.length > 0) throw new InputError(`not a Parity verdict: ${problems.join('; ')}`, { file });
  return v as Verdict;
}

export function readVerdict(file: string): Verdict {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new InputError('cannot read verdict', { file, cause });
  }
  return checkVerdictShape(json, file);
}

/** A run folder as the align runner leaves it: verdict.json, plus the curves when training ran. */
export function readRunFolder(runDir: string): RunReportInput {
  const verdict = readVerdict(join(runDir, RUN_FILES.verdict));
  const curveFile = join(runDir, RUN_FILES.curve);
  const refFile = join(runDir, RUN_FILES.referenceCurve);
  return {
    verdict,
    curve: existsSync(curveFile) ? readCurve(curveFile) : undefined,
    referenceCurve: existsSync(refFile) ? readCurve(refFile) : undefined,
  };
}
