import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { curveToJson } from '../../src/align/curve.ts';
import { type RunSuiteOptions, type SuiteRunner, hasReferences, nightlyRunDirName, parseNightlyArgs, runNightly, selectSuites } from '../../src/align/nightly.ts';
import { readHistory } from '../../src/align/report/history.ts';
import { writeRunReports } from '../../src/align/report/write.ts';
import { InputError } from '../../src/errors.ts';
import { syntheticRun } from './report/synthetic.ts';

type Behaviour = 'aligned' | 'misaligned' | 'unusable' | 'crash' | 'aligned-no-reports';

const NIGHT = new Date('2026-01-05T01:30:00Z');

/** A baselines folder whose suites each hold a reference curve, plus one folder that is no suite. */
function baselines(suites: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'parity-nightly-'));
  for (const s of suites) {
    mkdirSync(join(dir, 'baselines', s), { recursive: true });
    writeFileSync(join(dir, 'baselines', s, 'train_curve.json'), '{"loss":[1]}');
  }
  mkdirSync(join(dir, 'baselines', 'notes'));
  writeFileSync(join(dir, 'baselines', 'notes', 'README.md'), 'not a suite');
  return dir;
}

/**
 * Stands in for src/align/run-suite.ts: writes the run folder where and as the real runner does
 * (`<reportsDir>/<suite>/<runDirName>/`: verdict, curves, then the reports through
 * writeRunReports) from a synthetic run, or throws.
 */
function fakeRunner(behaviour: Record<string, Behaviour>, calls: RunSuiteOptions[]): SuiteRunner {
  return async (options) => {
    calls.push(options);
    const suite = options.suiteDir.split('/').pop()!;
    const b = behaviour[suite];
    if (b === 'unusable') throw new InputError('config.json is not valid JSON', { file: join(options.suiteDir, 'config.json') });
    if (b === 'crash') throw new TypeError('cannot read properties of undefined');
    const run = syntheticRun({ aligned: b !== 'misaligned', suite });
    const runDir = join(options.reportsDir, suite, options.runDirName ?? 'timestamp');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'verdict.json'), JSON.stringify(run.verdict));
    writeFileSync(join(runDir, 'curve.json'), JSON.stringify(curveToJson(run.curve!)));
    writeFileSync(join(runDir, 'reference-curve.json'), JSON.stringify(curveToJson(run.referenceCurve!)));
    if (b !== 'aligned-no-reports') await writeRunReports(runDir, run, { env: {} });
    return { verdict: run.verdict, runDir };
  };
}

async function night(behaviour: Record<string, Behaviour>, extra: { backend?: string; suites?: string[]; root?: string; steps?: number; date?: string } = {}) {
  const root = extra.root ?? baselines(Object.keys(behaviour));
  const calls: RunSuiteOptions[] = [];
  const lines: string[] = [];
  const result = await runNightly({
    baselinesDir: join(root, 'baselines'),
    reportsDir: join(root, 'reports'),
    suites: extra.suites,
    steps: extra.steps,
    backend: extra.backend,
    date: extra.date,
    runSuite: fakeRunner(behaviour, calls),
    now: () => NIGHT,
    log: (l) => lines.push(l),
  });
  const reports = join(root, 'reports');
  return { root, reports, result, calls, lines, index: readFileSync(join(reports, 'index.html'), 'utf8'), history: readHistory(join(reports, 'history.jsonl')) };
}

/** The status of a suite's row in the latest-night table (full runs only). */
const rowStatus = (index: string, suite: string) => new RegExp(`data-suite="${suite}" data-backend="[^"]+" data-steps="full" data-status="([a-z]+)"`).exec(index)?.[1];

describe('hasReferences', () => {
  it.each([
    ['train_curve.json', true],
    ['forward_initial.safetensors', true],
    ['forward_vpad1024.safetensors', true],
    ['forward_.safetensors', false],
    ['config.json', false],
  ])('a folder holding %s is a suite: %s', (file, expected) => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-suite-'));
    writeFileSync(join(dir, file), '');
    expect(hasReferences(dir)).toBe(expected);
  });

  it('a missing folder is no suite', () => {
    expect(hasReferences(join(tmpdir(), 'parity-no-such-folder'))).toBe(false);
  });
});

describe('selectSuites', () => {
  it('finds every shipped suite in baselines/, including forward-only megatron-gpt2', () => {
    expect(selectSuites('baselines')).toEqual(['bert', 'gpt2', 'llama', 'megatron-bert', 'megatron-gpt2', 'roberta', 't5', 't5v11', 'vit']);
  });

  it('keeps the requested order, once each', () => {
    expect(selectSuites('baselines', ['t5', 'bert', 't5'])).toEqual(['t5', 'bert']);
  });

  it.each([['nope'], ['README.md']])('rejects --suites %s before anything runs', (name) => {
    expect(() => selectSuites('baselines', ['bert', name])).toThrow(InputError);
  });

  it('rejects a baselines folder with no suite', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-empty-'));
    expect(() => selectSuites(dir)).toThrow(/no suite folders/);
  });
});

describe('parseNightlyArgs', () => {
  it('defaults to every suite in baselines/ and reports/', () => {
    expect(parseNightlyArgs([])).toEqual({ suites: undefined, steps: undefined, backend: undefined, date: undefined, baselinesDir: 'baselines', reportsDir: 'reports' });
  });

  it('reads --suites, --steps, --backend and --date', () => {
    expect(parseNightlyArgs(['--suites', 'bert, gpt2', '--steps', '50', '--backend', 'wasm', '--date', '2026-01-05'])).toMatchObject({ suites: ['bert', 'gpt2'], steps: 50, backend: 'wasm', date: '2026-01-05' });
  });

  it('reads an empty --date (a CI variable left unset) as today', () => {
    expect(parseNightlyArgs(['--date', '']).date).toBeUndefined();
  });

  it.each([[['--steps', '0']], [['--steps', '1.5']], [['--steps', 'x']], [['--suites', ',']], [['--frobnicate']], [['bert']], [['--date', '2026-1-5']], [['--date', 'today']]])('rejects %j as unusable input', (argv) => {
    expect(() => parseNightlyArgs(argv)).toThrow(InputError);
  });
});

describe('nightlyRunDirName', () => {
  it('names the run by the backend asked for, and by the step count when one was asked for', () => {
    expect(nightlyRunDirName()).toBe('auto');
    expect(nightlyRunDirName('tensorflow-gpu')).toBe('tensorflow-gpu');
    expect(nightlyRunDirName('wasm', 50)).toBe('wasm-50steps');
    expect(nightlyRunDirName(undefined, 2)).toBe('auto-2steps');
  });
});

describe('runNightly', () => {
  it('exits 0 when every suite aligns, with a run folder, a history line and a green row each', async () => {
    const { reports, result, calls, history, index } = await night({ bert: 'aligned', gpt2: 'aligned' });
    expect(result.exitCode).toBe(0);
    expect(calls.map((c) => [c.suiteDir.split('/').pop(), c.steps, c.backend, c.runDirName, c.reportsDir])).toEqual([
      ['bert', undefined, undefined, 'auto', join(reports, 'nightly', '2026-01-05')],
      ['gpt2', undefined, undefined, 'auto', join(reports, 'nightly', '2026-01-05')],
    ]);
    expect(history.map((h) => [h.date, h.suite, h.pass, h.steps, h.runDir])).toEqual([
      ['2026-01-05', 'bert', true, null, 'nightly/2026-01-05/bert/auto'],
      ['2026-01-05', 'gpt2', true, null, 'nightly/2026-01-05/gpt2/auto'],
    ]);
    expect(history[0]).toMatchObject({ backend: 'wasm', msPerStep: 12.5 });
    expect(history[0].forwardMaxAbsDiff).toBeCloseTo(7e-7, 15);
    expect(rowStatus(index, 'bert')).toBe('pass');
    expect(index).toContain('data-verdict="pass"');
    // Every report links to the one bundle in reports/, not an 11 MB copy per run.
    const html = readFileSync(join(reports, 'nightly', '2026-01-05', 'bert', 'auto', 'report.html'), 'utf8');
    expect(html).toContain('<script src="../../../../plotly.js"></script>');
    expect(existsSync(join(reports, 'nightly', '2026-01-05', 'bert', 'auto', 'plotly.js'))).toBe(false);
    expect(existsSync(join(reports, 'plotly.js'))).toBe(true);
  });

  it('exits 1 for a misaligned suite, red in its report, its JUnit and the dashboard', async () => {
    const { reports, result, history, index } = await night({ bert: 'aligned', broken: 'misaligned' });
    expect(result.exitCode).toBe(1);
    const runDir = join(reports, 'nightly', '2026-01-05', 'broken', 'auto');
    expect(readFileSync(join(runDir, 'report.html'), 'utf8')).toContain('<header id="verdict-banner" class="banner fail" data-verdict="fail">');
    expect(readFileSync(join(runDir, 'junit.xml'), 'utf8')).toMatch(/<testcase classname="parity\.broken\.train" name="loss" time="0">\s*<failure /);
    expect(history.find((h) => h.suite === 'broken')).toMatchObject({ pass: false });
    expect(rowStatus(index, 'broken')).toBe('fail');
    expect(rowStatus(index, 'bert')).toBe('pass');
    expect(index).toContain('data-verdict="fail">Parity nightly: 1 of 2 runs failing: broken · wasm');
    expect(index).toContain('<a href="nightly/2026-01-05/broken/auto/report.html">report</a>');
  });

  it('exits 2 for an unusable suite, still running the others and rendering the dashboard', async () => {
    const { reports, result, calls, history, index, lines } = await night({ 'a-unusable': 'unusable', broken: 'misaligned', good: 'aligned' });
    expect(result.exitCode).toBe(2);
    expect(calls.map((c) => c.suiteDir.split('/').pop())).toEqual(['a-unusable', 'broken', 'good']);
    expect(history.map((h) => [h.suite, h.pass, h.error ?? null])).toEqual([
      ['a-unusable', false, expect.stringContaining('config.json is not valid JSON')],
      ['broken', false, null],
      ['good', true, null],
    ]);
    const error = JSON.parse(readFileSync(join(reports, 'nightly', '2026-01-05', 'a-unusable', 'auto', 'error.json'), 'utf8'));
    expect(error).toMatchObject({ suite: 'a-unusable', backend: 'auto', date: '2026-01-05', exitCode: 2 });
    expect(rowStatus(index, 'a-unusable')).toBe('error');
    expect(rowStatus(index, 'broken')).toBe('fail');
    expect(rowStatus(index, 'good')).toBe('pass');
    expect(lines.some((l) => l.startsWith('a-unusable: UNUSABLE INPUT'))).toBe(true);
  });

  it('exits 70 when the runner crashes, an internal fault outranking any verdict', async () => {
    const { result, history } = await night({ bert: 'crash', gpt2: 'unusable', t5: 'misaligned' });
    expect(result.exitCode).toBe(70);
    expect(history[0].error).toBe('cannot read properties of undefined');
  });

  it('names run folders by backend when one is forced, and passes it on', async () => {
    const { reports, calls, history } = await night({ bert: 'aligned' }, { backend: 'wasm' });
    expect(calls[0].backend).toBe('wasm');
    expect(calls[0].runDirName).toBe('wasm');
    expect(history[0].runDir).toBe('nightly/2026-01-05/bert/wasm');
    expect(existsSync(join(reports, 'nightly', '2026-01-05', 'bert', 'wasm', 'report.html'))).toBe(true);
  });

  it('writes the reports itself when the runner did not', async () => {
    const { reports } = await night({ bert: 'aligned-no-reports' });
    for (const f of ['report.html', 'junit.xml', 'summary.md']) expect(existsSync(join(reports, 'nightly', '2026-01-05', 'bert', 'auto', f))).toBe(true);
  });

  it('runs only --suites, and a rerun the same night replaces that night', async () => {
    const first = await night({ bert: 'misaligned', gpt2: 'aligned' });
    const stale = join(first.reports, 'nightly', '2026-01-05', 'bert', 'auto', 'stale.txt');
    writeFileSync(stale, 'from the first run');
    const second = await night({ bert: 'aligned', gpt2: 'aligned' }, { root: first.root, suites: ['bert'] });
    expect(second.calls.map((c) => c.suiteDir.split('/').pop())).toEqual(['bert']);
    expect(existsSync(stale)).toBe(false);
    // The rerun's line replaces the first run's: one line per run folder, no duplicates.
    expect(second.history.map((h) => [h.suite, h.pass])).toEqual([
      ['gpt2', true],
      ['bert', true],
    ]);
    expect(rowStatus(second.index, 'bert')).toBe('pass');
  });

  it('keeps a shorter run by hand apart from the night it shares a date with', async () => {
    const full = await night({ bert: 'misaligned' }, { backend: 'wasm' });
    const short = await night({ bert: 'aligned' }, { root: full.root, backend: 'wasm', steps: 50 });
    expect(short.calls[0]).toMatchObject({ steps: 50, runDirName: 'wasm-50steps' });
    expect(short.history.map((h) => [h.suite, h.pass, h.steps, h.runDir])).toEqual([
      ['bert', false, null, 'nightly/2026-01-05/bert/wasm'],
      ['bert', true, 50, 'nightly/2026-01-05/bert/wasm-50steps'],
    ]);
    // Both folders stay; the night's row is still the full run's red one.
    expect(existsSync(join(short.reports, 'nightly', '2026-01-05', 'bert', 'wasm', 'verdict.json'))).toBe(true);
    expect(existsSync(join(short.reports, 'nightly', '2026-01-05', 'bert', 'wasm-50steps', 'verdict.json'))).toBe(true);
    expect(rowStatus(short.index, 'bert')).toBe('fail');
    const error = await night({ bert: 'unusable' }, { root: full.root, backend: 'wasm', steps: 7 });
    expect(JSON.parse(readFileSync(join(error.reports, 'nightly', '2026-01-05', 'bert', 'wasm-7steps', 'error.json'), 'utf8'))).toMatchObject({ steps: 7, backend: 'wasm' });
    expect(error.history.at(-1)).toMatchObject({ steps: 7, runDir: 'nightly/2026-01-05/bert/wasm-7steps' });
  });

  it('files the run under the night it is given, whatever the clock says', async () => {
    const { reports, history, result } = await night({ bert: 'aligned' }, { backend: 'wasm', date: '2026-01-04' });
    expect(result.date).toBe('2026-01-04');
    expect(history[0]).toMatchObject({ date: '2026-01-04', runDir: 'nightly/2026-01-04/bert/wasm' });
    expect(existsSync(join(reports, 'nightly', '2026-01-04', 'bert', 'wasm', 'verdict.json'))).toBe(true);
    await expect(night({ bert: 'aligned' }, { date: '5 Jan' })).rejects.toThrow(InputError);
  });

  it('reads the clock once, so a night crossing midnight stays one night', async () => {
    const root = baselines(['bert', 'gpt2']);
    let reads = 0;
    const result = await runNightly({
      baselinesDir: join(root, 'baselines'),
      reportsDir: join(root, 'reports'),
      runSuite: fakeRunner({ bert: 'aligned', gpt2: 'aligned' }, []),
      now: () => new Date(NIGHT.getTime() + 86_400_000 * reads++),
    });
    expect(reads).toBe(1);
    expect(result.outcomes.map((o) => o.entry.date)).toEqual(['2026-01-05', '2026-01-05']);
  });
});
