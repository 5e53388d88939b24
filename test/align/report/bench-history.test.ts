/**
 * The nightly's benchmark figures: `npm run bench` JSON into bench-history.jsonl (a rerun of the
 * night replaces its lines), plotted on the dashboard; the dashboard CLI takes them with --bench.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_HISTORY_FILE, benchEntries, benchPlots, readBenchHistory, upsertBenchHistory } from '../../../src/align/report/bench-history.ts';
import { InputError } from '../../../src/errors.ts';
import { REPO, TSX, tempDir } from '../../support/suite-copy.ts';
import { syntheticRun } from './synthetic.ts';

const work = tempDir('parity-bench-history-');
afterAll(() => work.cleanup());

const report = (ms: number) => ({
  backend: 'wasm',
  suites: { bert: { msPerStepMedian: ms, forwardMsMedian: 9.5, trainGflops: 1.2, peakRssMB: 380 } },
  sizes: { gpt2: { msPerStepMedian: 40_000, forwardMsMedian: 9000, trainGflops: 6.1, peakRssMB: 3100 }, 't5-base': { failed: 'exit 1' } },
});

describe('bench history', () => {
  it('takes one line per workload from a bench report, nulls where a workload failed', () => {
    const lines = benchEntries(report(35), '2026-12-08', 'bench.json');
    expect(lines.map((l) => l.workload)).toEqual(['suite bert', 'size gpt2', 'size t5-base']);
    expect(lines[0]).toEqual({ date: '2026-12-08', backend: 'wasm', workload: 'suite bert', msPerStep: 35, forwardMs: 9.5, trainGflops: 1.2, peakRssMB: 380 });
    expect(lines[2].msPerStep).toBeNull();
  });

  it('refuses what is not a bench report, naming the file', () => {
    expect(() => benchEntries({ suites: {} }, '2026-12-08', 'x.json')).toThrow(InputError);
    expect(() => benchEntries({ suites: {} }, '2026-12-08', 'x.json')).toThrow(/x\.json/);
  });

  it('a rerun of a night replaces that night\'s lines and keeps the others', async () => {
    const file = join(work.dir, BENCH_HISTORY_FILE);
    await upsertBenchHistory(file, benchEntries(report(30), '2026-12-07', 'a'));
    await upsertBenchHistory(file, benchEntries(report(35), '2026-12-08', 'b'));
    await upsertBenchHistory(file, benchEntries(report(36), '2026-12-08', 'c'));
    const history = readBenchHistory(file);
    expect(history).toHaveLength(6);
    expect(history.filter((e) => e.workload === 'suite bert').map((e) => [e.date, e.msPerStep])).toEqual([['2026-12-07', 30], ['2026-12-08', 36]]);
  });

  it('plots ms per step and peak RSS per workload across nights', () => {
    const plots = benchPlots([...benchEntries(report(30), '2026-12-07', 'a'), ...benchEntries(report(35), '2026-12-08', 'b')]);
    expect(plots.map((p) => p.id)).toEqual(['plot-bench-ms-per-step', 'plot-bench-peak-rss']);
    const bert = plots[0].traces.find((t) => t.name === 'suite bert · wasm')!;
    expect(bert.x).toEqual(['2026-12-07', '2026-12-08']);
    expect(bert.y).toEqual([30, 35]);
    // A workload with no number at all draws no trace.
    expect(plots[0].traces.some((t) => String(t.name).startsWith('size t5-base'))).toBe(false);
  });

  it('npm run dashboard -- --bench files the night\'s figures and draws them on index.html', async () => {
    const incoming = join(work.dir, 'incoming');
    mkdirSync(join(work.dir, 'bench', 'bench-wasm'), { recursive: true });
    // One run folder as a nightly leg leaves it: the dashboard merges legs and files benchmarks in one go.
    const leg = join(incoming, 'leg-bert-wasm', 'nightly', '2026-12-08', 'bert', 'wasm');
    mkdirSync(leg, { recursive: true });
    writeFileSync(join(leg, 'verdict.json'), JSON.stringify(syntheticRun({ aligned: true, suite: 'bert' }).verdict));
    writeFileSync(join(work.dir, 'bench', 'bench-wasm', 'bench.json'), JSON.stringify(report(33)));
    const reports = join(work.dir, 'reports');
    const r = await execa(TSX, ['src/cli/dashboard.ts', incoming, '--reports', reports, '--date', '2026-12-08', '--bench', join(work.dir, 'bench')], { cwd: REPO, reject: false });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(readBenchHistory(join(reports, BENCH_HISTORY_FILE))).toHaveLength(3);
    const html = readFileSync(join(reports, 'index.html'), 'utf8');
    expect(html).toContain('id="plot-bench-ms-per-step"');
    expect(html).toContain('id="plot-bench-peak-rss"');
  }, 60_000);
});
