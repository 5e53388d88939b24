/**
 * `reports/index.html`: the nightly dashboard. One row per suite (and backend) with its latest
 * verdict, numbers and a link to the run report; plots of final loss, max|diff| and ms/step across
 * nights; a grid of every night's verdicts. Rendered only from `history.jsonl`, so a dashboard can
 * be rebuilt anywhere the history and run folders were copied to (CI merges matrix artifacts with
 * `mergeRunFolders`, see src/cli/dashboard.ts).
 */
import { cpSync, existsSync, lstatSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { InputError } from '../../errors.ts';
import { formatNumber } from './checks.ts';
import { type HistoryEntry, DATE_PATTERN, ERROR_FILE, HISTORY_FILE, type RunStatus, appendHistory, historyEntryFromError, isoDate, readHistory, readRunError, runFolderEntry, statusOf } from './history.ts';
import { type PlotSpec, type PlotTrace, escapeHtml, plotDiv, renderPage, table } from './page.ts';
import { RUN_FILES, copyPlotlyBundle, readRunFolder, readVerdict, writeFileReplacing, writeHtmlReport } from './write.ts';

export const INDEX_FILE = 'index.html';
/** Nights shown in the verdict grid; the plots keep the whole history. */
const GRID_NIGHTS = 90;

const seriesKey = (e: Pick<HistoryEntry, 'suite' | 'backend'>) => `${e.suite} · ${e.backend}`;

/** One result per (night, suite, backend): a rerun the same night supersedes the earlier line. */
export function onePerNight(history: readonly HistoryEntry[]): HistoryEntry[] {
  const last = new Map<string, HistoryEntry>();
  for (const e of history) last.set(`${e.date}\u0000${e.suite}\u0000${e.backend}`, e);
  return [...last.values()].sort((a, b) => a.date.localeCompare(b.date) || a.suite.localeCompare(b.suite) || a.backend.localeCompare(b.backend));
}

/**
 * The dashboard rows: for each suite, its results on the latest night it ran. Keyed by suite, not
 * by (suite, backend): a suite whose backend was never reported (it failed before choosing one)
 * must still turn its row red rather than leave yesterday's green row standing.
 */
export function latestRows(history: readonly HistoryEntry[]): HistoryEntry[] {
  const nights = onePerNight(history);
  const latestDate = new Map<string, string>();
  for (const e of nights) if ((latestDate.get(e.suite) ?? '') < e.date) latestDate.set(e.suite, e.date);
  return nights.filter((e) => e.date === latestDate.get(e.suite)).sort((a, b) => a.suite.localeCompare(b.suite) || a.backend.localeCompare(b.backend));
}

/** Link target inside a run folder (an errored run has only its error.json), or null without one. */
function runLink(e: HistoryEntry): string | null {
  if (e.runDir === '') return null;
  const file = e.error === undefined ? RUN_FILES.html : ERROR_FILE;
  return [...e.runDir.split('/').filter(Boolean), file].map(encodeURIComponent).join('/');
}

function linkHtml(e: HistoryEntry, text: string): string {
  const href = runLink(e);
  return href === null ? escapeHtml(text) : `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`;
}

type NumericKey = 'finalLoss' | 'maxAbsDiff' | 'forwardMaxAbsDiff' | 'msPerStep';
const TREND_PLOTS: ReadonlyArray<{ key: NumericKey; id: string; title: string; log: boolean }> = [
  { key: 'finalLoss', id: 'plot-final-loss', title: 'Final loss', log: false },
  { key: 'maxAbsDiff', id: 'plot-loss-diff', title: 'Loss max|diff| vs reference (log)', log: true },
  { key: 'forwardMaxAbsDiff', id: 'plot-forward-diff', title: 'Forward max|diff| (log)', log: true },
  { key: 'msPerStep', id: 'plot-ms-per-step', title: 'ms per training step', log: false },
];

/** One plot per metric, one trace per (suite, backend) that has a plottable value on some night. */
export function dashboardPlots(history: readonly HistoryEntry[]): PlotSpec[] {
  const ran = onePerNight(history).filter((e) => e.error === undefined);
  const bySeries = new Map<string, HistoryEntry[]>();
  for (const e of ran) bySeries.set(seriesKey(e), [...(bySeries.get(seriesKey(e)) ?? []), e]);
  const plots: PlotSpec[] = [];
  for (const p of TREND_PLOTS) {
    const usable = (v: number | null) => v !== null && (!p.log || v > 0);
    const traces: PlotTrace[] = [];
    for (const [name, entries] of [...bySeries].sort(([a], [b]) => a.localeCompare(b))) {
      if (!entries.some((e) => usable(e[p.key]))) continue;
      traces.push({
        type: 'scatter',
        mode: 'lines+markers',
        name,
        x: entries.map((e) => e.date),
        y: entries.map((e) => (usable(e[p.key]) ? e[p.key] : null)),
        // Failing nights are crosses, so a trend line cannot hide a red night.
        marker: { symbol: entries.map((e) => (e.pass ? 'circle' : 'x')), size: entries.map((e) => (e.pass ? 6 : 11)) },
        text: entries.map((e) => statusOf(e)),
      });
    }
    if (traces.length === 0) continue;
    plots.push({
      id: p.id,
      traces,
      layout: {
        title: { text: p.title },
        height: 320,
        margin: { l: 70, r: 20, t: 70, b: 60 },
        // Nights are discrete runs: a category axis of ISO dates (which sort as text) labels each
        // night once, where a date axis would tick at hours in between.
        xaxis: { type: 'category', categoryorder: 'category ascending', title: { text: 'night' } },
        yaxis: p.log ? { type: 'log', exponentformat: 'e' } : {},
        legend: { orientation: 'h', x: 0, y: 1, yanchor: 'bottom' },
      },
    });
  }
  return plots;
}

const STATUS_TEXT: Record<RunStatus, string> = { pass: 'PASS', fail: 'FAIL', error: 'ERROR' };

const DASHBOARD_STYLE = `
td.status { color: #fff; font-weight: 700; text-align: center; }
td.status.pass, td.cell.pass { background: #1a7f37; }
td.status.fail, td.cell.fail { background: #cf222e; }
td.status.error, td.cell.error { background: #9a6700; }
td.cell { text-align: center; padding: 2px 6px; color: #fff; font-weight: 700; }
td.cell a { color: #fff; text-decoration: none; font-weight: 700; }
td.cell.none { background: #f6f8fa; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px 16px; }
`;

function latestTable(rows: readonly HistoryEntry[]): string {
  const num = (x: number | null) => escapeHtml(x === null ? '—' : formatNumber(x));
  const cells = rows.map((e) => {
    const status = statusOf(e);
    return [
      `<code>${escapeHtml(e.suite)}</code>`,
      escapeHtml(e.backend),
      { html: STATUS_TEXT[status], attrs: `class="status ${status}"` },
      escapeHtml(e.date),
      num(e.finalLoss),
      num(e.maxAbsDiff),
      num(e.forwardMaxAbsDiff),
      num(e.msPerStep),
      `${linkHtml(e, e.error === undefined ? 'report' : 'error')}${e.error === undefined ? '' : ` <span class="note">${escapeHtml(e.error)}</span>`}`,
    ];
  });
  return table(
    ['suite', 'backend', 'verdict', 'night', 'final loss', 'loss max|diff|', 'forward max|diff|', 'ms/step', 'latest run'],
    cells,
    rows.map((e) => `class="${statusOf(e)}" data-suite="${escapeHtml(e.suite)}" data-backend="${escapeHtml(e.backend)}" data-status="${statusOf(e)}"`),
  );
}

function nightGrid(history: readonly HistoryEntry[]): string {
  const nights = onePerNight(history);
  const series = [...new Set(nights.map(seriesKey))].sort();
  const dates = [...new Set(nights.map((e) => e.date))].sort().reverse().slice(0, GRID_NIGHTS);
  const at = new Map(nights.map((e) => [`${e.date}\u0000${seriesKey(e)}`, e]));
  const head = `<tr><th>night</th>${series.map((s) => `<th>${escapeHtml(s)}</th>`).join('')}</tr>`;
  const body = dates.map((d) => {
    const cells = series.map((s) => {
      const e = at.get(`${d}\u0000${s}`);
      if (!e) return '<td class="cell none"></td>';
      const status = statusOf(e);
      const mark = { pass: '✓', fail: '✗', error: '!' }[status];
      return `<td class="cell ${status}" title="${escapeHtml(`${s} ${d}: ${STATUS_TEXT[status]}${e.error ? `: ${e.error}` : ''}`)}">${linkHtml(e, mark)}</td>`;
    });
    return `<tr><td>${escapeHtml(d)}</td>${cells.join('')}</tr>`;
  });
  return `<table id="night-grid"><thead>${head}</thead><tbody>${body.join('\n')}</tbody></table>`;
}

export interface DashboardOptions {
  plotlySrc: string;
  generatedAt: Date;
}

export function renderDashboard(history: readonly HistoryEntry[], options: DashboardOptions): string {
  const rows = latestRows(history);
  const bad = rows.filter((e) => statusOf(e) !== 'pass');
  const status = rows.length > 0 && bad.length === 0 ? 'pass' : 'fail';
  const headline =
    rows.length === 0 ? 'No nightly runs recorded yet' : bad.length === 0 ? `All ${rows.length} runs aligned` : `${bad.length} of ${rows.length} runs failing: ${bad.map(seriesKey).join(', ')}`;
  const plots = dashboardPlots(history);
  const body = [
    `<header id="dashboard-banner" class="banner ${status}" data-verdict="${status}">Parity nightly: ${escapeHtml(headline)}<small>generated ${escapeHtml(options.generatedAt.toISOString())} · ${history.length} history lines</small></header>`,
    '<main>',
    '<h2>Latest night per suite</h2>',
    latestTable(rows),
    '<h2>Across nights</h2>',
    plots.length > 0 ? `<div class="plots">${plots.map(plotDiv).join('\n')}</div>` : '<p class="note">No numbers to plot yet.</p>',
    '<p class="note">Crosses mark failing nights. Log axes cannot show an exact 0.</p>',
    `<h2>Verdicts by night (latest ${GRID_NIGHTS})</h2>`,
    nightGrid(history),
    '</main>',
  ].join('\n');
  return renderPage({ title: `Parity nightly: ${headline}`, plotlySrc: options.plotlySrc, body, plots, extraStyle: DASHBOARD_STYLE });
}

/** Renders `<reportsDir>/index.html` from `<reportsDir>/history.jsonl`, with plotly beside it. */
export async function writeDashboard(reportsDir: string, generatedAt = new Date()): Promise<string> {
  const history = readHistory(join(reportsDir, HISTORY_FILE));
  await copyPlotlyBundle(reportsDir);
  const file = join(reportsDir, INDEX_FILE);
  await writeFileReplacing(file, renderDashboard(history, { plotlySrc: RUN_FILES.plotly, generatedAt }));
  return file;
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

/**
 * Where a run folder belongs under `reports/nightly/`: its night and its path below that night.
 * A folder already laid out by the nightly (`…/<YYYY-MM-DD>/<suite>/<backend>/`) keeps its path
 * below the date; any other (an align run's `<suite>/<timestamp>/`) goes to
 * `<night its verdict started>/<suite>/<folder name>`.
 */
export function placeOf(runDir: string, root: string): { date: string; path: string } {
  const segments = relative(root, runDir).split(sep);
  const at = lastNightSegment(segments);
  if (at >= 0) return { date: segments[at], path: segments.slice(at + 1).join('/') || suiteOf(runDir) };
  const path = `${suiteOf(runDir)}/${basename(runDir)}`;
  if (existsSync(join(runDir, ERROR_FILE))) return { date: readRunError(join(runDir, ERROR_FILE)).date, path };
  const started = Date.parse(readVerdict(join(runDir, RUN_FILES.verdict)).startedAt);
  if (!Number.isFinite(started)) throw new InputError('cannot tell which night this run belongs to: startedAt is not a date', { file: runDir });
  return { date: isoDate(new Date(started)), path };
}

export interface MergeResult {
  entries: HistoryEntry[];
  /** Run folders that could not be read; each also has an error line in the history. */
  unusable: string[];
}

/**
 * Copies every run folder found under `incomingDir` to `<reportsDir>/nightly/<night>/…` (placeOf),
 * relinks its report to the one shared plotly bundle, appends a history line per run and renders
 * the dashboard. Used by CI to merge the artifacts of independent matrix jobs.
 */
export async function mergeRunFolders(incomingDir: string, reportsDir: string, options: { date?: string } = {}): Promise<MergeResult> {
  if (!existsSync(incomingDir) || !lstatSync(incomingDir).isDirectory()) throw new InputError('no such folder of run folders', { file: incomingDir });
  const folders = findRunFolders(incomingDir);
  if (folders.length === 0) throw new InputError(`no run folders (with ${RUN_FILES.verdict} or ${ERROR_FILE}) found`, { file: incomingDir });
  const sharedPlotly = await copyPlotlyBundle(reportsDir);
  const entries: HistoryEntry[] = [];
  const unusable: string[] = [];
  const taken = new Map<string, string>();
  for (const folder of folders) {
    let date = options.date ?? '';
    try {
      const place = placeOf(folder, incomingDir);
      date ||= place.date;
      const target = join(reportsDir, 'nightly', date, ...place.path.split('/'));
      const other = taken.get(resolve(target));
      if (other) throw new InputError(`two run folders map to ${target}`, { file: folder, expected: 'one run per night, suite and backend', actual: `also ${other}` });
      taken.set(resolve(target), folder);
      if (resolve(folder) !== resolve(target)) {
        await rm(target, { recursive: true, force: true });
        cpSync(folder, target, { recursive: true });
      }
      if (!existsSync(join(target, ERROR_FILE))) await writeHtmlReport(target, readRunFolder(target), sharedPlotly);
      entries.push(runFolderEntry(target, { date, reportsDir }));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      unusable.push(folder);
      // Still a line on the dashboard: an artifact that cannot be read is a night that did not check.
      // It has no run folder under reports/ (runDir ""), so the row shows the error without a link.
      const segments = relative(incomingDir, folder).split(sep);
      const suite = segments[lastNightSegment(segments) + 1] ?? basename(folder);
      entries.push(historyEntryFromError({ suite, backend: 'unknown', date: date || isoDate(new Date()), message: error.message, exitCode: error.exitCode }, ''));
    }
  }
  await appendHistory(join(reportsDir, HISTORY_FILE), entries);
  await writeDashboard(reportsDir);
  return { entries, unusable };
}
