import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { curveToJson } from '../../../src/align/curve.ts';
import { SUITE_PALETTE, dashboardPlots, latestRows, onePerNight, renderDashboard, shortRuns, suiteColours } from '../../../src/align/report/dashboard.ts';
import { findRunFolders, mergeRunFolders } from '../../../src/align/report/merge.ts';
import { type HistoryEntry, appendHistory, parseRunDirName, readHistory, runDirName, upsertHistory } from '../../../src/align/report/history.ts';
import type { RunReportInput } from '../../../src/align/report/html.ts';
import { InputError } from '../../../src/errors.ts';
import { syntheticRun } from './synthetic.ts';

function entry(over: Partial<HistoryEntry>): HistoryEntry {
  return { date: '2026-01-01', suite: 'bert', pass: true, backend: 'wasm', steps: null, finalLoss: 2.5, maxAbsDiff: 1e-6, forwardMaxAbsDiff: 2e-7, msPerStep: 12, runDir: 'nightly/2026-01-01/bert', ...over };
}

const GENERATED = new Date('2026-01-04T05:00:00Z');
const render = (history: HistoryEntry[]) => renderDashboard(history, { plotlySrc: 'plotly.js', generatedAt: GENERATED });

/** `<tr ...>` of the latest-night table for a suite, with the attributes the row carries. */
function rowOf(html: string, suite: string): string {
  const m = new RegExp(`<tr class="[a-z]+" data-suite="${suite}"[^>]*>.*?</tr>`).exec(html);
  if (!m) throw new Error(`no dashboard row for ${suite}`);
  return m[0];
}

const tmp = () => mkdtempSync(join(tmpdir(), 'parity-dashboard-'));

describe('history.jsonl', () => {
  it('reads back what was appended, oldest first', async () => {
    const file = join(tmp(), 'reports', 'history.jsonl');
    expect(readHistory(file)).toEqual([]);
    const a = entry({});
    const b = entry({ date: '2026-01-02', pass: false, maxAbsDiff: null, error: 'bad input' });
    await appendHistory(file, [a]);
    await appendHistory(file, [b]);
    expect(readHistory(file)).toEqual([a, b]);
  });

  it('upserts: a line for the same run replaces the earlier one, however often the night is merged', async () => {
    const file = join(tmp(), 'history.jsonl');
    const bert = entry({ runDir: 'nightly/2026-01-01/bert/wasm', pass: false });
    const gpt2 = entry({ suite: 'gpt2', runDir: 'nightly/2026-01-01/gpt2/wasm' });
    await upsertHistory(file, [bert, gpt2]);
    await upsertHistory(file, [bert, gpt2]);
    const rerun = { ...bert, pass: true };
    // A short run the same night is another run; a line without a run folder is keyed by backend and steps.
    const short = entry({ runDir: 'nightly/2026-01-01/bert/wasm-50steps', steps: 50 });
    const lost = entry({ suite: 't5', runDir: '', error: 'unreadable', pass: false });
    await upsertHistory(file, [rerun, short, lost, lost]);
    expect(readHistory(file)).toEqual([gpt2, rerun, short, lost]);
  });

  it('reads a line written before step counts were recorded as a full run', () => {
    const file = join(tmp(), 'history.jsonl');
    const { steps: _, ...old } = entry({});
    writeFileSync(file, `${JSON.stringify(old)}\n`);
    expect(readHistory(file)).toEqual([entry({ steps: null })]);
  });

  it('names run folders by backend and step count, and reads the name back', () => {
    expect(runDirName('wasm', null)).toBe('wasm');
    expect(runDirName('webgpu', 50)).toBe('webgpu-50steps');
    expect(runDirName(undefined, undefined)).toBe('auto');
    for (const [b, n] of [['wasm', null], ['tensorflow-gpu', 1000], ['auto', 2]] as const) expect(parseRunDirName(runDirName(b, n))).toEqual({ backend: b, steps: n });
  });

  it.each([
    ['a zero step count', JSON.stringify(entry({ steps: 0 })), /line 2: "steps" is neither a positive integer nor null/],
    ['not JSON', '{"date":', /line 2 is not valid JSON/],
    ['a bad date', JSON.stringify(entry({ date: '2026-1-2' })), /line 2: "date" is not YYYY-MM-DD/],
    ['a string number', JSON.stringify({ ...entry({}), msPerStep: '12' }), /line 2: "msPerStep" is neither a number nor null/],
  ])('names the line holding %s', (_, line, error) => {
    const file = join(tmp(), 'history.jsonl');
    writeFileSync(file, `${JSON.stringify(entry({}))}\n${line}\n`);
    expect(() => readHistory(file)).toThrow(InputError);
    expect(() => readHistory(file)).toThrow(error);
  });
});

describe('onePerNight and latestRows', () => {
  it('lets a rerun the same night supersede the earlier line', () => {
    const first = entry({ pass: false });
    const rerun = entry({ pass: true, msPerStep: 11 });
    expect(onePerNight([first, rerun])).toEqual([rerun]);
  });

  it('shows each suite at its latest night, even when that night errored before choosing a backend', () => {
    const rows = latestRows([
      entry({ date: '2026-01-01' }),
      entry({ date: '2026-01-02', backend: 'auto', pass: false, error: 'config.json: unusable' }),
      entry({ suite: 'gpt2', date: '2026-01-01', runDir: 'nightly/2026-01-01/gpt2' }),
    ]);
    expect(rows.map((r) => [r.suite, r.date, r.backend])).toEqual([
      ['bert', '2026-01-02', 'auto'],
      ['gpt2', '2026-01-01', 'wasm'],
    ]);
  });

  it('keeps one row per backend when a suite ran on two the same night', () => {
    const rows = latestRows([entry({ runDir: 'nightly/2026-01-01/bert/wasm' }), entry({ backend: 'webgpu', pass: false, runDir: 'nightly/2026-01-01/bert/webgpu' })]);
    expect(rows.map((r) => r.backend)).toEqual(['wasm', 'webgpu']);
  });

  it('takes a run that first errored before choosing a backend and then, re-run, reported one as the same run', () => {
    const dir = 'nightly/2026-01-01/bert/auto';
    const rows = onePerNight([entry({ backend: 'auto', error: 'died', pass: false, runDir: dir }), entry({ backend: 'tensorflow', runDir: dir })]);
    expect(rows.map((r) => [r.backend, r.pass])).toEqual([['tensorflow', true]]);
  });

  it('never lets a shorter run stand in for the night’s full run, and lists it apart', () => {
    const history = [
      entry({ date: '2026-01-01', pass: false, runDir: 'nightly/2026-01-01/bert/wasm' }),
      // The next day, a 50-step run by hand passes: the row must stay the full run's red one.
      entry({ date: '2026-01-02', steps: 50, runDir: 'nightly/2026-01-02/bert/wasm-50steps' }),
      entry({ date: '2026-01-01', suite: 'gpt2', steps: 50, runDir: 'nightly/2026-01-01/gpt2/wasm-50steps' }),
    ];
    expect(latestRows(history).map((r) => [r.suite, r.date, r.pass, r.steps])).toEqual([['bert', '2026-01-01', false, null]]);
    expect(shortRuns(history).map((r) => [r.suite, r.date, r.steps])).toEqual([
      ['bert', '2026-01-02', 50],
      ['gpt2', '2026-01-01', 50],
    ]);
    const html = render(history);
    expect(html).toContain('data-verdict="fail">Parity nightly: 1 of 1 runs failing: bert · wasm');
    expect(/<div id="short-runs">.*<\/div>/s.exec(html)![0]).toContain('data-suite="bert" data-backend="wasm" data-steps="50" data-status="pass"');
    // Plots and grid show full runs only.
    for (const p of dashboardPlots(history)) expect(p.traces.map((t) => [t.name, t.x])).toEqual([['bert · wasm', ['2026-01-01']]]);
    expect(/<table id="night-grid">.*?<\/table>/s.exec(html)![0]).not.toContain('2026-01-02');
  });
});

describe('renderDashboard', () => {
  const history = [
    entry({ date: '2026-01-01' }),
    entry({ date: '2026-01-01', suite: 'gpt2', runDir: 'nightly/2026-01-01/gpt2' }),
    entry({ date: '2026-01-02' }),
    entry({ date: '2026-01-02', suite: 'gpt2', pass: false, maxAbsDiff: 0.3, runDir: 'nightly/2026-01-02/gpt2' }),
  ];

  it('colours a failing suite red and the banner with it', () => {
    const html = render(history);
    expect(rowOf(html, 'gpt2')).toMatch(/^<tr class="fail" data-suite="gpt2" data-backend="wasm" data-steps="full" data-status="fail">/);
    expect(rowOf(html, 'gpt2')).toContain('<td class="status fail">FAIL</td>');
    expect(rowOf(html, 'bert')).toContain('<td class="status pass">PASS</td>');
    expect(html).toContain('<header id="dashboard-banner" class="banner fail" data-verdict="fail">Parity nightly: 1 of 2 runs failing: gpt2 · wasm');
  });

  it('is green only when every latest run passed', () => {
    const html = render(history.slice(0, 3));
    expect(html).toContain('data-verdict="pass">Parity nightly: All 2 runs aligned');
    expect(render([])).toContain('data-verdict="fail">Parity nightly: No nightly runs recorded yet');
  });

  it('links each row to its run report, and an errored run to its error.json', () => {
    const html = render([entry({ runDir: 'nightly/2026-01-01/my suite' }), entry({ suite: 't5', error: 'no config', pass: false, runDir: 'nightly/2026-01-01/t5' })]);
    expect(rowOf(html, 'bert')).toContain('<a href="nightly/2026-01-01/my%20suite/report.html">report</a>');
    expect(rowOf(html, 't5')).toContain('<a href="nightly/2026-01-01/t5/error.json">error</a>');
    expect(rowOf(html, 't5')).toContain('data-status="error"');
  });

  it('shows every night in the grid, newest first', () => {
    const grid = /<table id="night-grid">.*<\/table>/s.exec(render(history))![0];
    expect([...grid.matchAll(/<tr><td>(\d{4}-\d{2}-\d{2})<\/td>/g)].map((m) => m[1])).toEqual(['2026-01-02', '2026-01-01']);
    expect(grid.match(/class="cell fail"/g)).toHaveLength(1);
    expect(grid.match(/class="cell pass"/g)).toHaveLength(3);
  });

  it('declares on each plot div the traces of its spec', () => {
    const html = render(history);
    const divs = [...html.matchAll(/<div class="plot" id="([^"]+)" data-traces="(\d+)">/g)].map((m) => [m[1], Number(m[2])]);
    expect(divs).toEqual([
      ['plot-final-loss', 2],
      ['plot-loss-diff', 2],
      ['plot-forward-diff', 2],
      ['plot-ms-per-step', 2],
    ]);
  });
});

describe('suite colours and number formats', () => {
  const suites = Array.from({ length: 20 }, (_, i) => `suite-${String(i).padStart(2, '0')}`);

  it('gives each suite the palette slot of its first night, no repeats up to 20 suites', () => {
    // Suites first seen on later nights come later, whatever their names.
    const history = suites.map((suite, i) => entry({ suite, date: `2026-01-${String(20 - i).padStart(2, '0')}` }));
    const colours = suiteColours(history);
    expect([...colours.keys()]).toEqual([...suites].reverse());
    expect(new Set(colours.values()).size).toBe(20);
    expect(colours.get('suite-19')).toBe(SUITE_PALETTE[0]);
  });

  it('keeps the colours of known suites when a new one appears, in every plot', () => {
    const before = [entry({ suite: 'gpt2' }), entry({ suite: 't5', date: '2026-01-02' })];
    const after = [...before, entry({ suite: 'bert', date: '2026-01-03' }), entry({ suite: 'gpt2', date: '2026-01-03', backend: 'webgpu', runDir: 'x' })];
    const old = suiteColours(before);
    const now = suiteColours(after);
    for (const s of ['gpt2', 't5']) expect(now.get(s)).toBe(old.get(s));
    for (const p of dashboardPlots(after)) {
      for (const t of p.traces) {
        const suite = String(t.name).split(' · ')[0];
        expect((t.line as { color: string }).color).toBe(now.get(suite));
        expect((t.marker as { color: string }).color).toBe(now.get(suite));
      }
    }
    const dash = (name: string) => (dashboardPlots(after)[0].traces.find((t) => t.name === name)!.line as { dash: string }).dash;
    expect([dash('gpt2 · wasm'), dash('gpt2 · webgpu')]).toEqual(['solid', 'dash']);
  });

  it('writes each metric the same way in the table, the hover and the axis', () => {
    const html = render([entry({ finalLoss: 2.345678, maxAbsDiff: 0.000123456, forwardMaxAbsDiff: 7e-7, msPerStep: 33.35 })]);
    // Expected strings written by hand: 4 decimals, 2-decimal exponent form, 1 decimal.
    expect(rowOf(html, 'bert')).toContain('<td class="num">2.3457</td><td class="num">1.23e-4</td><td class="num">7.00e-7</td><td class="num">33.4</td>');
    const formats = Object.fromEntries(dashboardPlots([entry({})]).map((p) => [p.id, [String(p.traces[0].hovertemplate).match(/%\{y:([^}]+)\}/)![1], (p.layout.yaxis as { tickformat: string }).tickformat]]));
    expect(formats).toEqual({
      'plot-final-loss': ['.4f', '.4~f'],
      'plot-loss-diff': ['.2e', '.2~e'],
      'plot-forward-diff': ['.2e', '.2~e'],
      'plot-ms-per-step': ['.1f', '.1~f'],
    });
  });

  it('sizes the bottom margin for the legend rows, keeping the legend below the axis and the title on top', () => {
    const few = dashboardPlots([entry({})])[0].layout;
    const many = dashboardPlots(suites.map((suite) => entry({ suite, runDir: suite })))[0].layout;
    expect((many.margin as { b: number }).b).toBeGreaterThan((few.margin as { b: number }).b + 100);
    expect(many.legend).toMatchObject({ orientation: 'h', yref: 'container', y: 0, yanchor: 'bottom' });
    expect(many.title).toMatchObject({ yref: 'container', y: 1, yanchor: 'top' });
  });
});

describe('dashboardPlots', () => {
  it('draws one trace per suite and backend that has a value, crosses on failing nights', () => {
    const plots = dashboardPlots([
      entry({ date: '2026-01-01' }),
      entry({ date: '2026-01-02', pass: false }),
      entry({ suite: 'gpt2', forwardMaxAbsDiff: null, msPerStep: null, finalLoss: null, maxAbsDiff: 0 }),
      entry({ suite: 't5', error: 'unusable', pass: false }),
    ]);
    const byId = Object.fromEntries(plots.map((p) => [p.id, p.traces]));
    // gpt2 has only a 0 (no log-axis point) and nulls; t5 errored: neither has a trace anywhere.
    expect(Object.keys(byId)).toEqual(['plot-final-loss', 'plot-loss-diff', 'plot-forward-diff', 'plot-ms-per-step']);
    for (const traces of Object.values(byId)) expect(traces.map((t) => t.name)).toEqual(['bert · wasm']);
    expect(byId['plot-loss-diff'][0]).toMatchObject({ x: ['2026-01-01', '2026-01-02'], marker: { symbol: ['circle', 'x'] } });
  });
});

/** A run folder as the align runner leaves it (no reports: the merge renders them). */
function writeRunFolder(dir: string, run: RunReportInput): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'verdict.json'), JSON.stringify(run.verdict));
  if (run.curve) writeFileSync(join(dir, 'curve.json'), JSON.stringify(curveToJson(run.curve)));
  if (run.referenceCurve) writeFileSync(join(dir, 'reference-curve.json'), JSON.stringify(curveToJson(run.referenceCurve)));
}

describe('mergeRunFolders', () => {
  it('copies matrix artifacts into reports/nightly/<night>/, links them to one plotly and records them', async () => {
    const root = tmp();
    const incoming = join(root, 'incoming');
    const reports = join(root, 'reports');
    writeRunFolder(join(incoming, 'nightly-bert-cpu', 'nightly', '2026-01-03', 'bert', 'wasm'), syntheticRun({ aligned: true, suite: 'bert' }));
    writeRunFolder(join(incoming, 'nightly-gpt2-cpu', 'nightly', '2026-01-03', 'gpt2', 'wasm'), syntheticRun({ aligned: false, suite: 'gpt2' }));
    // An align run folder, no night above it: the night comes from the verdict's startedAt (2026-01-02).
    writeRunFolder(join(incoming, 'align-t5', 't5', '2026-01-02T03-04-05-000Z'), syntheticRun({ aligned: true, suite: 't5' }));
    const errDir = join(incoming, 'nightly-t5v11-gpu', 'nightly', '2026-01-03', 't5v11', 'tensorflow-gpu');
    mkdirSync(errDir, { recursive: true });
    writeFileSync(join(errDir, 'error.json'), JSON.stringify({ suite: 't5v11', backend: 'tensorflow-gpu', date: '2026-01-03', message: 'config.json: not JSON', exitCode: 2 }));

    const { entries, unusable } = await mergeRunFolders(incoming, reports);

    expect(unusable).toEqual([]);
    expect(entries.map((e) => [e.suite, e.date, e.pass, e.runDir, e.error ?? null])).toEqual([
      ['t5', '2026-01-02', true, 'nightly/2026-01-02/t5/2026-01-02T03-04-05-000Z', null],
      ['bert', '2026-01-03', true, 'nightly/2026-01-03/bert/wasm', null],
      ['gpt2', '2026-01-03', false, 'nightly/2026-01-03/gpt2/wasm', null],
      ['t5v11', '2026-01-03', false, 'nightly/2026-01-03/t5v11/tensorflow-gpu', 'config.json: not JSON'],
    ]);
    const gpt2 = syntheticRun({ aligned: false, suite: 'gpt2' });
    expect(entries[2]).toMatchObject({ finalLoss: gpt2.curve!.metrics.loss.at(-1), maxAbsDiff: gpt2.verdict.train!.maxAbsDiff, msPerStep: 12.5, backend: 'wasm' });
    expect(readHistory(join(reports, 'history.jsonl'))).toEqual(entries);

    const runDir = join(reports, 'nightly', '2026-01-03', 'gpt2', 'wasm');
    expect(readFileSync(join(runDir, 'report.html'), 'utf8')).toContain('<script src="../../../../plotly.js"></script>');
    expect(readFileSync(join(runDir, 'report.html'), 'utf8')).toContain('data-verdict="fail"');
    expect(existsSync(join(runDir, 'plotly.js'))).toBe(false);
    expect(existsSync(join(reports, 'plotly.js'))).toBe(true);
    const index = readFileSync(join(reports, 'index.html'), 'utf8');
    expect(rowOf(index, 'gpt2')).toContain('data-status="fail"');
    expect(rowOf(index, 't5v11')).toContain('data-status="error"');
  });

  it('refuses two runs that would land in the same folder, and keeps going', async () => {
    const root = tmp();
    const incoming = join(root, 'incoming');
    writeRunFolder(join(incoming, 'a', '2026-01-03', 'bert', 'wasm'), syntheticRun({ aligned: true, suite: 'bert' }));
    writeRunFolder(join(incoming, 'b', '2026-01-03', 'bert', 'wasm'), syntheticRun({ aligned: true, suite: 'bert' }));
    writeRunFolder(join(incoming, 'c', '2026-01-03', 'gpt2', 'wasm'), syntheticRun({ aligned: true, suite: 'gpt2' }));
    const { entries, unusable } = await mergeRunFolders(incoming, join(root, 'reports'));
    expect(unusable).toEqual([join(incoming, 'b', '2026-01-03', 'bert', 'wasm')]);
    expect(entries.map((e) => [e.suite, e.backend, e.pass, e.runDir])).toEqual([
      ['bert', 'wasm', true, 'nightly/2026-01-03/bert/wasm'],
      ['bert', 'wasm', false, ''],
      ['gpt2', 'wasm', true, 'nightly/2026-01-03/gpt2/wasm'],
    ]);
    expect(entries[1].error).toMatch(/two run folders map to/);
    // The first keeps its folder: the duplicate's error does not replace it.
    expect(existsSync(join(root, 'reports', 'nightly', '2026-01-03', 'bert', 'wasm', 'verdict.json'))).toBe(true);
  });

  it('records a run folder whose verdict is not a verdict as unusable, with an error.json in its place', async () => {
    const root = tmp();
    const dir = join(root, 'incoming', '2026-01-03', 'bert', 'wasm');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'verdict.json'), '{"schema": 2}');
    const { entries, unusable } = await mergeRunFolders(join(root, 'incoming'), join(root, 'reports'));
    expect(unusable).toHaveLength(1);
    expect(entries[0]).toMatchObject({ suite: 'bert', backend: 'wasm', steps: null, pass: false, date: '2026-01-03', runDir: 'nightly/2026-01-03/bert/wasm' });
    expect(entries[0].error).toMatch(/not a Parity verdict: schema 2 \(expected 1\)/);
    expect(rowOf(readFileSync(join(root, 'reports', 'index.html'), 'utf8'), 'bert')).toContain('<a href="nightly/2026-01-03/bert/wasm/error.json">error</a> <span class="note">');
    // The unreadable verdict is not published as if it were one.
    expect(existsSync(join(root, 'reports', 'nightly', '2026-01-03', 'bert', 'wasm', 'verdict.json'))).toBe(false);
  });

  it('records a folder it cannot place without a run folder', async () => {
    const root = tmp();
    const dir = join(root, 'incoming', 'somewhere');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'verdict.json'), 'not json');
    const { entries } = await mergeRunFolders(join(root, 'incoming'), join(root, 'reports'));
    expect(entries[0]).toMatchObject({ suite: 'somewhere', backend: 'unknown', pass: false, runDir: '' });
  });

  it('fails on a folder holding no run at all', async () => {
    const root = tmp();
    mkdirSync(join(root, 'empty', 'x'), { recursive: true });
    await expect(mergeRunFolders(join(root, 'empty'), join(root, 'reports'))).rejects.toThrow(/no run folders/);
    await expect(mergeRunFolders(join(root, 'missing'), join(root, 'reports'))).rejects.toThrow(InputError);
  });
});

describe('mergeRunFolders with the CI matrix', () => {
  const NIGHT = '2026-01-03';
  const leg = (incoming: string, artifact: string, suite: string, backend: string, aligned = true) =>
    writeRunFolder(join(incoming, artifact, NIGHT, suite, backend), { ...syntheticRun({ aligned, suite }), verdict: { ...syntheticRun({ aligned, suite }).verdict, backend } });
  const expect2x2 = { suites: ['bert', 'gpt2'], backends: ['wasm', 'webgpu'], steps: null };

  it('gives an expected leg that left nothing an error line and an error.json, and exits as merged', async () => {
    const root = tmp();
    const incoming = join(root, 'incoming');
    leg(incoming, 'leg-bert-wasm', 'bert', 'wasm');
    leg(incoming, 'leg-bert-webgpu', 'bert', 'webgpu');
    leg(incoming, 'leg-gpt2-wasm', 'gpt2', 'wasm', false);
    const reports = join(root, 'reports');
    const { entries, missing, unusable } = await mergeRunFolders(incoming, reports, { date: NIGHT, expect: expect2x2, runUrl: 'https://ci.example/run/7' });
    expect(unusable).toEqual([]);
    expect(missing).toEqual(['gpt2/webgpu']);
    expect(entries.at(-1)).toMatchObject({ suite: 'gpt2', backend: 'webgpu', pass: false, runDir: `nightly/${NIGHT}/gpt2/webgpu` });
    expect(entries.at(-1)!.error).toMatch(/no result from this leg.*see https:\/\/ci\.example\/run\/7/);
    const error = JSON.parse(readFileSync(join(reports, 'nightly', NIGHT, 'gpt2', 'webgpu', 'error.json'), 'utf8'));
    expect(error).toMatchObject({ suite: 'gpt2', backend: 'webgpu', date: NIGHT, steps: null, exitCode: 2 });
    const html = readFileSync(join(reports, 'index.html'), 'utf8');
    expect([...html.matchAll(/<tr class="([a-z]+)" data-suite="([^"]+)" data-backend="([^"]+)" data-steps="full"/g)].map((m) => `${m[2]}/${m[3]}:${m[1]}`)).toEqual([
      'bert/wasm:pass',
      'bert/webgpu:pass',
      'gpt2/wasm:fail',
      'gpt2/webgpu:error',
    ]);
  });

  it('merges the same artifacts twice, and a re-run that fills a missing leg, without duplicate lines', async () => {
    const root = tmp();
    const incoming = join(root, 'incoming');
    const reports = join(root, 'reports');
    leg(incoming, 'leg-bert-wasm', 'bert', 'wasm', false);
    await mergeRunFolders(incoming, reports, { date: NIGHT, expect: { ...expect2x2, suites: ['bert'] } });
    await mergeRunFolders(incoming, reports, { date: NIGHT, expect: { ...expect2x2, suites: ['bert'] } });
    expect(readHistory(join(reports, 'history.jsonl')).map((e) => [e.backend, e.pass, e.error === undefined]).sort()).toEqual([
      ['wasm', false, true],
      ['webgpu', false, false],
    ]);
    // The re-run: bert × wasm passes and overwrites its artifact; bert × webgpu arrives at last.
    rmSync(join(incoming, 'leg-bert-wasm'), { recursive: true });
    leg(incoming, 'leg-bert-wasm', 'bert', 'wasm', true);
    leg(incoming, 'leg-bert-webgpu', 'bert', 'webgpu', true);
    // A fresh reports folder holding only the history, as the CI merge job has.
    const again = join(root, 'reports-2');
    mkdirSync(again);
    writeFileSync(join(again, 'history.jsonl'), readFileSync(join(reports, 'history.jsonl')));
    const { missing } = await mergeRunFolders(incoming, again, { date: NIGHT, expect: { ...expect2x2, suites: ['bert'] } });
    expect(missing).toEqual([]);
    expect(readHistory(join(again, 'history.jsonl')).map((e) => [e.backend, e.pass, e.error === undefined])).toEqual([
      ['wasm', true, true],
      ['webgpu', true, true],
    ]);
    expect(existsSync(join(again, 'nightly', NIGHT, 'bert', 'webgpu', 'error.json'))).toBe(false);
  });

  it('names the expected folders by the step count the legs were asked for', async () => {
    const root = tmp();
    const { missing, entries } = await mergeRunFolders(join(root, 'none'), join(root, 'reports'), { date: NIGHT, expect: { suites: ['bert'], backends: ['wasm'], steps: 50 } });
    expect(missing).toEqual(['bert/wasm-50steps']);
    expect(entries[0]).toMatchObject({ steps: 50, runDir: `nightly/${NIGHT}/bert/wasm-50steps` });
    await expect(mergeRunFolders(join(root, 'none'), join(root, 'reports'), { expect: { suites: ['bert'], backends: ['wasm'], steps: null } })).rejects.toThrow(/--date/);
  });

  it('keeps the run folders of the newest nights and links only those', async () => {
    const root = tmp();
    const reports = join(root, 'reports');
    for (const night of ['2026-01-01', '2026-01-02', '2026-01-03']) {
      const incoming = join(root, `incoming-${night}`);
      writeRunFolder(join(incoming, 'leg-bert-wasm', night, 'bert', 'wasm'), syntheticRun({ aligned: true, suite: 'bert' }));
      await mergeRunFolders(incoming, reports, { keepNights: 2 });
    }
    expect(readdirSync(join(reports, 'nightly')).sort()).toEqual(['2026-01-02', '2026-01-03']);
    expect(readHistory(join(reports, 'history.jsonl')).map((e) => e.date)).toEqual(['2026-01-01', '2026-01-02', '2026-01-03']);
    const grid = /<table id="night-grid">.*?<\/table>/s.exec(readFileSync(join(reports, 'index.html'), 'utf8'))![0];
    expect([...grid.matchAll(/href="([^"]+)"/g)].map((m) => m[1])).toEqual(['nightly/2026-01-03/bert/wasm/report.html', 'nightly/2026-01-02/bert/wasm/report.html']);
  });
});

describe('findRunFolders', () => {
  it('finds folders with a verdict or an error, without descending into them', () => {
    const root = tmp();
    for (const d of ['a/2026-01-01/bert', 'a/2026-01-01/bert/nested', 'b/x']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'a/2026-01-01/bert/verdict.json'), '{}');
    writeFileSync(join(root, 'a/2026-01-01/bert/nested/verdict.json'), '{}');
    writeFileSync(join(root, 'b/x/error.json'), '{}');
    expect(findRunFolders(root)).toEqual([join(root, 'a/2026-01-01/bert'), join(root, 'b/x')]);
  });
});
