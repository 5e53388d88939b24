import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { curveToJson } from '../../../src/align/curve.ts';
import { dashboardPlots, findRunFolders, latestRows, mergeRunFolders, onePerNight, renderDashboard } from '../../../src/align/report/dashboard.ts';
import { type HistoryEntry, appendHistory, readHistory } from '../../../src/align/report/history.ts';
import type { RunReportInput } from '../../../src/align/report/html.ts';
import { InputError } from '../../../src/errors.ts';
import { syntheticRun } from './synthetic.ts';

function entry(over: Partial<HistoryEntry>): HistoryEntry {
  return { date: '2026-01-01', suite: 'bert', pass: true, backend: 'wasm', finalLoss: 2.5, maxAbsDiff: 1e-6, forwardMaxAbsDiff: 2e-7, msPerStep: 12, runDir: 'nightly/2026-01-01/bert', ...over };
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

  it.each([
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
    const rows = latestRows([entry({}), entry({ backend: 'tensorflow-gpu', pass: false })]);
    expect(rows.map((r) => r.backend)).toEqual(['tensorflow-gpu', 'wasm']);
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
    expect(rowOf(html, 'gpt2')).toMatch(/^<tr class="fail" data-suite="gpt2" data-backend="wasm" data-status="fail">/);
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
    expect(entries.map((e) => [e.suite, e.pass, e.runDir])).toEqual([
      ['bert', true, 'nightly/2026-01-03/bert/wasm'],
      ['bert', false, ''],
      ['gpt2', true, 'nightly/2026-01-03/gpt2/wasm'],
    ]);
    expect(entries[1].error).toMatch(/two run folders map to/);
  });

  it('records a run folder whose verdict is not a verdict as unusable', async () => {
    const root = tmp();
    const dir = join(root, 'incoming', '2026-01-03', 'bert', 'wasm');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'verdict.json'), '{"schema": 2}');
    const { entries, unusable } = await mergeRunFolders(join(root, 'incoming'), join(root, 'reports'));
    expect(unusable).toHaveLength(1);
    expect(entries[0]).toMatchObject({ suite: 'bert', pass: false, date: '2026-01-03', runDir: '' });
    expect(rowOf(readFileSync(join(root, 'reports', 'index.html'), 'utf8'), 'bert')).toContain('<td>error <span class="note">');
    expect(entries[0].error).toMatch(/not a Parity verdict: schema 2 \(expected 1\)/);
  });

  it('fails on a folder holding no run at all', async () => {
    const root = tmp();
    mkdirSync(join(root, 'empty', 'x'), { recursive: true });
    await expect(mergeRunFolders(join(root, 'empty'), join(root, 'reports'))).rejects.toThrow(/no run folders/);
    await expect(mergeRunFolders(join(root, 'missing'), join(root, 'reports'))).rejects.toThrow(InputError);
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
