/**
 * `reports/index.html`: the nightly dashboard. One row per suite and backend with its latest full
 * run, numbers and a link to the run report; plots of final loss, max|diff| and ms/step across
 * nights; a grid of every night's verdicts; shorter runs made by hand in a table of their own.
 * Rendered only from `history.jsonl`, so a dashboard can be rebuilt anywhere the history and run
 * folders were copied to (CI merges matrix artifacts with `mergeRunFolders` in merge.ts, see
 * src/cli/dashboard.ts and ci/README.md).
 */
import { join } from 'node:path';
import { type HistoryEntry, ERROR_FILE, HISTORY_FILE, type RunStatus, historyKey, readHistory, statusOf } from './history.ts';
import { type PlotSpec, type PlotTrace, escapeHtml, plotDiv, renderPage, table } from './page.ts';
import { BENCH_HISTORY_FILE, type BenchEntry, benchPlots, readBenchHistory } from './bench-history.ts';
import { RUN_FILES, copyPlotlyBundle, writeFileReplacing } from './write.ts';

export const INDEX_FILE = 'index.html';
/** Nights shown in the verdict grid; the plots keep the whole history. */
const GRID_NIGHTS = 90;
/** Rows in the table of shorter runs (by hand, with --steps), newest first. */
const SHORT_RUN_ROWS = 20;

const seriesKey = (e: Pick<HistoryEntry, 'suite' | 'backend'>) => `${e.suite} · ${e.backend}`;
const isFullRun = (e: Pick<HistoryEntry, 'steps'>) => e.steps === null;
const byNightSuiteBackend = (a: HistoryEntry, b: HistoryEntry) => a.date.localeCompare(b.date) || a.suite.localeCompare(b.suite) || a.backend.localeCompare(b.backend) || (a.steps ?? 0) - (b.steps ?? 0);

/** One result per run (historyKey): a rerun of the same run folder supersedes the earlier line. */
export function onePerNight(history: readonly HistoryEntry[]): HistoryEntry[] {
  const last = new Map<string, HistoryEntry>();
  for (const e of history) last.set(historyKey(e), e);
  return [...last.values()].sort(byNightSuiteBackend);
}

/**
 * The dashboard rows: for each suite, its full runs (whole reference curve) on the latest night it
 * had one. Keyed by suite, not by (suite, backend): a suite whose backend was never reported (it
 * failed before choosing one) must still turn its row red rather than leave yesterday's green row
 * standing. A shorter run never appears here, so a 50-step run by hand cannot stand in for the
 * night's 1000-step row (shortRuns lists those).
 */
export function latestRows(history: readonly HistoryEntry[]): HistoryEntry[] {
  const nights = onePerNight(history).filter(isFullRun);
  const latestDate = new Map<string, string>();
  for (const e of nights) if ((latestDate.get(e.suite) ?? '') < e.date) latestDate.set(e.suite, e.date);
  return nights.filter((e) => e.date === latestDate.get(e.suite)).sort((a, b) => a.suite.localeCompare(b.suite) || a.backend.localeCompare(b.backend));
}

/** Runs asked for fewer steps than the reference curve: the latest of each (suite, backend, steps), newest first. */
export function shortRuns(history: readonly HistoryEntry[], limit = SHORT_RUN_ROWS): HistoryEntry[] {
  const latest = new Map<string, HistoryEntry>();
  for (const e of onePerNight(history)) if (!isFullRun(e)) latest.set(`${e.suite}\u0000${e.backend}\u0000${e.steps}`, e);
  return [...latest.values()].sort((a, b) => b.date.localeCompare(a.date) || a.suite.localeCompare(b.suite) || a.backend.localeCompare(b.backend) || (a.steps ?? 0) - (b.steps ?? 0)).slice(0, limit);
}

/**
 * 20 colours told apart at a glance (Kelly's colours of maximum contrast, without white and the
 * pale ones that vanish on a white background), the most distinct first, so up to 20 suites never
 * share one and the first six differ in hue.
 */
export const SUITE_PALETTE: readonly string[] = [
  '#0067a5', '#be0032', '#008856', '#f38400', '#875692', '#882d17', '#e68fac', '#2b3d26', '#4f9fd8', '#8db600',
  '#604e97', '#f6a600', '#b3446c', '#654522', '#e25822', '#a39060', '#848482', '#f99379', '#b8ad00', '#222222',
];

/** Line styles for the backends of one suite (its colour stays the suite's). */
const BACKEND_DASHES: readonly string[] = ['solid', 'dash', 'dot', 'dashdot', 'longdash', 'longdashdot'];

/** Names in the order they first appear in the history (night, then name): new ones come last. */
function byFirstNight(history: readonly HistoryEntry[], name: (e: HistoryEntry) => string): string[] {
  const first = new Map<string, string>();
  for (const e of history) if ((first.get(name(e)) ?? '9999') > e.date) first.set(name(e), e.date);
  return [...first].sort(([a, da], [b, db]) => da.localeCompare(db) || a.localeCompare(b)).map(([n]) => n);
}

/**
 * A colour per suite, the same in every plot and on every night, never the trace's position in a
 * plot: suites take the palette in the order they first appeared in the history (night, then name).
 * The history only grows, so a suite added later takes the next colour and leaves the others'
 * alone, and no two suites share a colour until there are more than 20.
 */
export function suiteColours(history: readonly HistoryEntry[]): Map<string, string> {
  return new Map(byFirstNight(history, (e) => e.suite).map((suite, i) => [suite, SUITE_PALETTE[i % SUITE_PALETTE.length]]));
}

/** A line style per backend, by first appearance (the first backend, normally wasm, is solid). */
export function backendDashes(history: readonly HistoryEntry[]): Map<string, string> {
  return new Map(byFirstNight(history, (e) => e.backend).map((b, i) => [b, BACKEND_DASHES[i % BACKEND_DASHES.length]]));
}

type NumericKey = 'finalLoss' | 'maxAbsDiff' | 'forwardMaxAbsDiff' | 'msPerStep';

/**
 * One number format per metric, shared by the table, the plot hovers (d3 `hover`) and the axis
 * ticks (`tick`: the same format with trailing zeros trimmed), so a value reads the same wherever
 * it appears. Losses live around 1–10 (4 decimals show a 1e-4 move); diffs span 1e-9..1 (exponent
 * form); ms per step is tens to hundreds (one decimal).
 */
export const METRIC_FORMATS: Record<NumericKey, { hover: string; tick: string; text: (x: number) => string }> = {
  finalLoss: { hover: '.4f', tick: '.4~f', text: (x) => x.toFixed(4) },
  maxAbsDiff: { hover: '.2e', tick: '.2~e', text: (x) => x.toExponential(2) },
  forwardMaxAbsDiff: { hover: '.2e', tick: '.2~e', text: (x) => x.toExponential(2) },
  msPerStep: { hover: '.1f', tick: '.1~f', text: (x) => x.toFixed(1) },
};

export function formatMetric(key: NumericKey, x: number | null): string {
  return x === null ? '—' : METRIC_FORMATS[key].text(x);
}

/** Nights whose run folders are kept (and so linked): the newest `keepNights`, or all. */
function keptNights(history: readonly HistoryEntry[], keepNights?: number): Set<string> | null {
  if (keepNights === undefined) return null;
  return new Set([...new Set(history.map((e) => e.date))].sort().reverse().slice(0, keepNights));
}

type Linker = (e: HistoryEntry, text: string) => string;

/** Links a line to its run report (an errored run to its error.json) while its night is kept. */
function linker(kept: Set<string> | null): Linker {
  return (e, text) => {
    if (e.runDir === '' || (kept !== null && !kept.has(e.date))) return escapeHtml(text);
    const file = e.error === undefined ? RUN_FILES.html : ERROR_FILE;
    const href = [...e.runDir.split('/').filter(Boolean), file].map(encodeURIComponent).join('/');
    return `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`;
  };
}

const TREND_PLOTS: ReadonlyArray<{ key: NumericKey; id: string; title: string; log: boolean }> = [
  { key: 'finalLoss', id: 'plot-final-loss', title: 'Final loss', log: false },
  { key: 'maxAbsDiff', id: 'plot-loss-diff', title: 'Loss max|diff| vs reference (log)', log: true },
  { key: 'forwardMaxAbsDiff', id: 'plot-forward-diff', title: 'Forward max|diff| (log)', log: true },
  { key: 'msPerStep', id: 'plot-ms-per-step', title: 'ms per training step', log: false },
];

/** Height of the plotting area; the legend's rows are added below it. */
const PLOT_AREA_PX = 230;
/**
 * Legend rows below the plot, counted for the narrowest plot the page lays out (the grid's 520 px
 * minimum): plotly wraps a horizontal legend at the plot's width, and a margin too small for the
 * rows it wraps to would push them over the axis labels. Entries are "<suite> · <backend>" (~7 px
 * a character at the legend's 12 px, plus 40 px of line sample and gap).
 */
function legendRows(names: readonly string[], widthPx = 520 - 70 - 20): number {
  let rows = 1;
  let used = 0;
  for (const n of names) {
    const w = 40 + 7 * n.length;
    if (used > 0 && used + w > widthPx) {
      rows++;
      used = 0;
    }
    used += w;
  }
  return rows;
}

/**
 * One plot per metric, one trace per (suite, backend) that has a plottable value on some night; full
 * runs only (a 50-step run's final loss is not comparable with a 1000-step one). The title sits in
 * the top margin and the legend below the x axis in a bottom margin sized for its wrapped rows, so
 * however many series wrap the legend, it cannot reach the title. Each suite keeps its colour in
 * every plot (suiteColours), each backend its line style.
 */
export function dashboardPlots(history: readonly HistoryEntry[]): PlotSpec[] {
  const ran = onePerNight(history).filter((e) => e.error === undefined && isFullRun(e));
  const colours = suiteColours(history);
  const dashes = backendDashes(history);
  const bySeries = new Map<string, HistoryEntry[]>();
  for (const e of ran) bySeries.set(seriesKey(e), [...(bySeries.get(seriesKey(e)) ?? []), e]);
  const plots: PlotSpec[] = [];
  for (const p of TREND_PLOTS) {
    const usable = (v: number | null) => v !== null && (!p.log || v > 0);
    const format = METRIC_FORMATS[p.key];
    const traces: PlotTrace[] = [];
    for (const [name, entries] of [...bySeries].sort(([a], [b]) => a.localeCompare(b))) {
      if (!entries.some((e) => usable(e[p.key]))) continue;
      const { suite, backend } = entries[0];
      traces.push({
        type: 'scatter',
        mode: 'lines+markers',
        name,
        x: entries.map((e) => e.date),
        y: entries.map((e) => (usable(e[p.key]) ? e[p.key] : null)),
        line: { color: colours.get(suite), dash: dashes.get(backend) },
        // Failing nights are crosses, so a trend line cannot hide a red night.
        marker: { color: colours.get(suite), symbol: entries.map((e) => (e.pass ? 'circle' : 'x')), size: entries.map((e) => (e.pass ? 6 : 11)) },
        text: entries.map((e) => statusOf(e)),
        hovertemplate: `%{fullData.name}<br>%{x}: %{y:${format.hover}} (%{text})<extra></extra>`,
      });
    }
    if (traces.length === 0) continue;
    const rows = legendRows(traces.map((t) => String(t.name)));
    // Bottom margin: tick labels (a category axis of dates may tilt them, ~60 px), then 22 px per legend row.
    const bottom = 70 + 22 * rows;
    plots.push({
      id: p.id,
      traces,
      layout: {
        title: { text: p.title, x: 0, xanchor: 'left', xref: 'paper', y: 1, yref: 'container', yanchor: 'top', pad: { t: 10 } },
        height: PLOT_AREA_PX + 50 + bottom,
        margin: { l: 70, r: 20, t: 50, b: bottom },
        // Nights are discrete runs: a category axis of ISO dates (which sort as text) labels each
        // night once, where a date axis would tick at hours in between.
        xaxis: { type: 'category', categoryorder: 'category ascending', automargin: false },
        yaxis: p.log ? { type: 'log', tickformat: format.tick } : { tickformat: format.tick },
        legend: { orientation: 'h', x: 0, xanchor: 'left', y: 0, yref: 'container', yanchor: 'bottom' },
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
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px 16px; }
`;

function runsTable(rows: readonly HistoryEntry[], link: Linker, withSteps: boolean): string {
  const num = (key: NumericKey, e: HistoryEntry) => ({ html: escapeHtml(formatMetric(key, e[key])), attrs: 'class="num"' });
  const cells = rows.map((e) => {
    const status = statusOf(e);
    return [
      `<code>${escapeHtml(e.suite)}</code>`,
      escapeHtml(e.backend),
      ...(withSteps ? [{ html: String(e.steps), attrs: 'class="num"' }] : []),
      { html: STATUS_TEXT[status], attrs: `class="status ${status}"` },
      escapeHtml(e.date),
      num('finalLoss', e),
      num('maxAbsDiff', e),
      num('forwardMaxAbsDiff', e),
      num('msPerStep', e),
      `${link(e, e.error === undefined ? 'report' : 'error')}${e.error === undefined ? '' : ` <span class="note">${escapeHtml(e.error)}</span>`}`,
    ];
  });
  return table(
    ['suite', 'backend', ...(withSteps ? ['steps'] : []), 'verdict', 'night', 'final loss', 'loss max|diff|', 'forward max|diff|', 'ms/step', 'run'],
    cells,
    rows.map((e) => `class="${statusOf(e)}" data-suite="${escapeHtml(e.suite)}" data-backend="${escapeHtml(e.backend)}" data-steps="${e.steps ?? 'full'}" data-status="${statusOf(e)}"`),
  );
}

function nightGrid(history: readonly HistoryEntry[], link: Linker): string {
  const nights = onePerNight(history).filter(isFullRun);
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
      return `<td class="cell ${status}" title="${escapeHtml(`${s} ${d}: ${STATUS_TEXT[status]}${e.error ? `: ${e.error}` : ''}`)}">${link(e, mark)}</td>`;
    });
    return `<tr><td>${escapeHtml(d)}</td>${cells.join('')}</tr>`;
  });
  return `<table id="night-grid"><thead>${head}</thead><tbody>${body.join('\n')}</tbody></table>`;
}

export interface DashboardOptions {
  plotlySrc: string;
  generatedAt: Date;
  /**
   * Run folders are kept for the newest this many nights (CI prunes the published site to them):
   * lines of older nights stay in the plots and the grid, without a link. Default: every night linked.
   */
  keepNights?: number;
  /** `npm run bench` figures across nights (bench-history.jsonl), plotted under their own heading. */
  bench?: readonly BenchEntry[];
}

export function renderDashboard(history: readonly HistoryEntry[], options: DashboardOptions): string {
  const rows = latestRows(history);
  const short = shortRuns(history);
  const link = linker(keptNights(history, options.keepNights));
  const bad = rows.filter((e) => statusOf(e) !== 'pass');
  const status = rows.length > 0 && bad.length === 0 ? 'pass' : 'fail';
  const headline =
    rows.length === 0 ? 'No nightly runs recorded yet' : bad.length === 0 ? `All ${rows.length} runs aligned` : `${bad.length} of ${rows.length} runs failing: ${bad.map(seriesKey).join(', ')}`;
  const trends = dashboardPlots(history);
  const speed = benchPlots(options.bench ?? []);
  const plots = [...trends, ...speed];
  const body = [
    `<header id="dashboard-banner" class="banner ${status}" data-verdict="${status}">Parity nightly: ${escapeHtml(headline)}<small>generated ${escapeHtml(options.generatedAt.toISOString())} · ${history.length} history lines</small></header>`,
    '<main>',
    '<h2>Latest night per suite</h2>',
    `<div id="latest">${runsTable(rows, link, false)}</div>`,
    '<h2>Across nights</h2>',
    trends.length > 0 ? `<div class="plots">${trends.map(plotDiv).join('\n')}</div>` : '<p class="note">No numbers to plot yet.</p>',
    '<p class="note">Crosses mark failing nights; each suite keeps its colour in every plot, each backend its line style. Log axes cannot show an exact 0.</p>',
    ...(speed.length > 0 ? ['<h2>Speed and memory (<code>npm run bench</code>)</h2>', `<div class="plots">${speed.map(plotDiv).join('\n')}</div>`] : []),
    `<h2>Verdicts by night (latest ${GRID_NIGHTS})</h2>`,
    nightGrid(history, link),
    ...(short.length > 0
      ? ['<h2>Shorter runs</h2>', '<p class="note">Runs asked for fewer steps than the reference curve (by hand, <code>--steps N</code>). They stay out of the rows, plots and grid above.</p>', `<div id="short-runs">${runsTable(short, link, true)}</div>`]
      : []),
    '</main>',
  ].join('\n');
  return renderPage({ title: `Parity nightly: ${headline}`, plotlySrc: options.plotlySrc, body, plots, extraStyle: DASHBOARD_STYLE });
}

/** Renders `<reportsDir>/index.html` from `<reportsDir>/history.jsonl`, with plotly beside it. */
export async function writeDashboard(reportsDir: string, generatedAt = new Date(), options: { keepNights?: number } = {}): Promise<string> {
  const history = readHistory(join(reportsDir, HISTORY_FILE));
  await copyPlotlyBundle(reportsDir);
  const file = join(reportsDir, INDEX_FILE);
  const bench = readBenchHistory(join(reportsDir, BENCH_HISTORY_FILE));
  await writeFileReplacing(file, renderDashboard(history, { plotlySrc: RUN_FILES.plotly, generatedAt, keepNights: options.keepNights, bench }));
  return file;
}
