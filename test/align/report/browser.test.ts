/**
 * Opens generated reports and a dashboard in headless Chromium from file:// (as a person would
 * open them offline) and checks what only a browser can: plotly loaded, every plot drew every
 * trace it declares, no console or page errors, the banner colour matches verdict.json. Pages and
 * screenshots stay in reports/browser-test/ for a human (and CI) to look at.
 *
 * Chromium must be installed: a missing browser fails this test rather than skipping it, since a
 * skipped browser test is a report nobody has seen render.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curveToJson } from '../../../src/align/curve.ts';
import { writeDashboard } from '../../../src/align/report/dashboard.ts';
import { type HistoryEntry, appendHistory } from '../../../src/align/report/history.ts';
import type { RunReportInput } from '../../../src/align/report/html.ts';
import { writeRunReports } from '../../../src/align/report/write.ts';
import type { Verdict } from '../../../src/align/verdict.ts';
import { syntheticRun } from './synthetic.ts';

/*
 * The functions handed to page.evaluate run in Chromium. The project compiles without the DOM lib
 * (a `/// <reference lib="dom">` would leak browser globals into every src file), so the little of
 * the DOM they touch is declared here, module-scoped.
 */
interface DomElement {
  id: string;
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement> & Iterable<DomElement>;
}
declare const document: { body: DomElement; getElementById(id: string): DomElement | null; querySelectorAll(selector: string): ArrayLike<DomElement> & Iterable<DomElement> };
declare const window: Record<string, unknown>;
declare function getComputedStyle(element: DomElement): { backgroundColor: string };
declare class DOMParser {
  parseFromString(text: string, type: string): { querySelector(selector: string): DomElement | null; querySelectorAll(selector: string): ArrayLike<DomElement> };
}

const CHROMIUM = process.env.PARITY_CHROMIUM ?? '/usr/bin/chromium';
const OUT = resolve('reports', 'browser-test');
const EVIL = 'initial/</script><script>window.__pwned=1</script>';

const GREEN = 'rgb(26, 127, 55)';
const RED = 'rgb(207, 34, 46)';

interface PageCheck {
  problems: string[];
  state: string | null;
  plots: Array<{ id: string; declared: number; data: number; drawn: number }>;
  pwned: unknown;
}

let context: BrowserContext | undefined;

/** The browser, or the reason there is none: each test fails with it (vitest would only skip them). */
function browser(): BrowserContext {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the report browser test needs it. ` +
        'Install it with `apt-get install -y chromium` (Debian; .ci/run does this), or point PARITY_CHROMIUM at a Chrome/Chromium binary.',
    );
  }
  if (!context) throw new Error('Chromium did not start; see the beforeAll error above');
  return context;
}

async function writeRun(dir: string, run: RunReportInput): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'verdict.json'), JSON.stringify(run.verdict, null, 2));
  writeFileSync(join(dir, 'curve.json'), JSON.stringify(curveToJson(run.curve!)));
  writeFileSync(join(dir, 'reference-curve.json'), JSON.stringify(curveToJson(run.referenceCurve!)));
  await writeRunReports(dir, run, { env: {} });
}

/** Nights of a passing and a failing suite, linking to the two reports written above. */
function history(): HistoryEntry[] {
  const nights = ['2026-01-01', '2026-01-02', '2026-01-03'];
  return nights.flatMap((date, i) => [
    { date, suite: 'synthetic-pass', pass: true, backend: 'wasm', steps: null, finalLoss: 2.4 - 0.01 * i, maxAbsDiff: 1e-6 * (i + 1), forwardMaxAbsDiff: 7e-7, msPerStep: 12 + i, runDir: 'pass' },
    { date, suite: 'synthetic-fail', pass: i < 2, backend: 'wasm', steps: null, finalLoss: i < 2 ? 2.4 : 3.9, maxAbsDiff: i < 2 ? 2e-6 : 1.6, forwardMaxAbsDiff: i < 2 ? 7e-7 : 0.15, msPerStep: 12.5, runDir: 'fail' },
  ]);
}

/**
 * Nights of 7 suites × 2 backends (14 series, more than plotly's default palette of 10), with
 * long names, so the legends wrap into several rows.
 */
function crowdedHistory(): HistoryEntry[] {
  const suites = ['bert', 'gpt2', 't5', 't5v11', 'megatron-bert', 'megatron-gpt2', 'a-suite-with-a-long-name'];
  return ['2026-01-01', '2026-01-02', '2026-01-03'].flatMap((date, d) =>
    suites.flatMap((suite, i) =>
      ['wasm', 'webgpu'].map((backend) => ({
        date,
        suite,
        backend,
        steps: null,
        pass: (d + i) % 4 !== 0,
        finalLoss: 2 + i / 10 + d / 100,
        maxAbsDiff: 1e-6 * (i + 1) * (d + 1),
        forwardMaxAbsDiff: 1e-7 * (i + 1),
        msPerStep: 30 + i + (backend === 'webgpu' ? 20 : 0),
        runDir: `nightly/${date}/${suite}/${backend}`,
      })),
    ),
  );
}

/** Loads a page and waits for its plots; every console error, page error and failed load is a problem. */
async function open(file: string, screenshot: string): Promise<PageCheck & { page: import('playwright-core').Page }> {
  const page = await browser().newPage();
  const problems: string[] = [];
  let pageError: (e: Error) => void = () => {};
  // A script error means the page will never mark its plots: stop waiting at the first one.
  const broken = new Promise<never>((_, reject) => (pageError = reject));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => {
    problems.push(`page error: ${e.message}`);
    pageError(new Error(`${file}: ${problems.join('; ')}`));
  });
  page.on('requestfailed', (r) => problems.push(`failed to load ${r.url()}: ${r.failure()?.errorText}`));
  await page.goto(pathToFileURL(file).href);
  await Promise.race([page.waitForFunction(() => document.body.hasAttribute('data-plots'), undefined, { timeout: 30_000 }), broken]);
  const checked = await page.evaluate(() => ({
    state: document.body.getAttribute('data-plots'),
    plots: [...document.querySelectorAll('div.plot')].map((el) => ({
      id: el.id,
      declared: Number(el.dataset.traces),
      data: ((el as unknown as { data?: unknown[] }).data ?? []).length,
      // Trace groups plotly actually drew into the SVG (legend entries are `.traces`, not `.trace`).
      drawn: el.querySelectorAll('.cartesianlayer .trace').length,
    })),
    pwned: window.__pwned,
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  return { page, problems, ...checked };
}

function expectEveryPlotDrawn(check: PageCheck): void {
  expect(check.problems).toEqual([]);
  expect(check.state).toBe('rendered');
  expect(check.plots.length).toBeGreaterThan(0);
  for (const p of check.plots) {
    expect(p.data, `${p.id}: traces handed to plotly`).toBe(p.declared);
    expect(p.drawn, `${p.id}: traces drawn`).toBe(p.declared);
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return; // every test fails through browser()
  rmSync(OUT, { recursive: true, force: true });
  await writeRun(join(OUT, 'pass'), syntheticRun({ aligned: true, checkpoints: true }));
  await writeRun(join(OUT, 'fail'), syntheticRun({ aligned: false, extraTensorName: EVIL, checkpoints: true }));
  await appendHistory(join(OUT, 'history.jsonl'), history());
  await writeDashboard(OUT, new Date('2026-01-03T06:00:00Z'));
  await appendHistory(join(OUT, 'crowded', 'history.jsonl'), crowdedHistory());
  await writeDashboard(join(OUT, 'crowded'), new Date('2026-01-03T06:00:00Z'));
  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'parity-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
});

describe('run report in Chromium', () => {
  it.each([
    ['pass', { 'plot-loss': 4, 'plot-loss-diff': 2, 'plot-grad-norm': 2, 'plot-lr': 2, 'plot-part-mlm_loss': 2, 'plot-part-nsp_loss': 2, 'plot-forward': 2, 'plot-checkpoints': 2 }],
    ['fail', { 'plot-loss': 5, 'plot-loss-diff': 2, 'plot-grad-norm': 2, 'plot-lr': 2, 'plot-part-mlm_loss': 2, 'plot-part-nsp_loss': 2, 'plot-forward': 3, 'plot-checkpoints': 3 }],
  ])('%s: renders every plot without errors, banner agreeing with verdict.json', async (name, expectedTraces) => {
    const dir = join(OUT, name);
    const verdict = JSON.parse(readFileSync(join(dir, 'verdict.json'), 'utf8')) as Verdict;
    const check = await open(join(dir, 'report.html'), join(dir, 'report.png'));
    expectEveryPlotDrawn(check);
    expect(Object.fromEntries(check.plots.map((p) => [p.id, p.drawn]))).toEqual(expectedTraces);
    expect(check.pwned).toBeUndefined();

    const banner = await check.page.evaluate(() => {
      const el = document.getElementById('verdict-banner')!;
      return { verdict: el.dataset.verdict, colour: getComputedStyle(el).backgroundColor, text: el.textContent };
    });
    expect(banner.verdict).toBe(verdict.pass ? 'pass' : 'fail');
    expect(banner.colour).toBe(verdict.pass ? GREEN : RED);
    expect(banner.text?.startsWith(verdict.pass ? 'PASS' : 'FAIL')).toBe(true);
    expect(existsSync(join(dir, 'report.png'))).toBe(true);
    await check.page.close();
  });

  it.each(['pass', 'fail'])('%s: junit.xml parses as XML in the browser, with the verdict’s failures', async (name) => {
    const dir = join(OUT, name);
    const verdict = JSON.parse(readFileSync(join(dir, 'verdict.json'), 'utf8')) as Verdict;
    const page = await browser().newPage();
    const parsed = await page.evaluate((xml) => {
      const doc = new DOMParser().parseFromString(xml, 'application/xml');
      return {
        error: doc.querySelector('parsererror')?.textContent ?? null,
        cases: doc.querySelectorAll('testcase').length,
        failures: doc.querySelectorAll('testcase > failure').length,
        skipped: doc.querySelectorAll('testcase > skipped').length,
      };
    }, readFileSync(join(dir, 'junit.xml'), 'utf8'));
    expect(parsed.error).toBeNull();
    // Counted from the synthetic verdict by hand: the failing run has 2 bad tensors, failing
    // sub-block checkpoints, a bad loss, a diverging generation and no golden (skipped); the
    // passing one has its golden.
    expect(parsed.failures).toBe(verdict.pass ? 0 : 2 + 1 + 1 + 1);
    expect(parsed.skipped).toBe(verdict.golden!.present ? 0 : 1);
    // + 1 for the sub-block checkpoint walk, + 1 for the golden.
    expect(parsed.cases).toBe(verdict.forward!.tensors.length + 1 + verdict.train!.metrics.length + verdict.generation!.cases.length + 1);
    await page.close();
  });
});

describe('dashboard in Chromium', () => {
  it('renders its trend plots without errors and shows the failing suite red', async () => {
    const check = await open(join(OUT, 'index.html'), join(OUT, 'index.png'));
    expectEveryPlotDrawn(check);
    // Two suites on one backend: one trace each in all four trend plots.
    expect(Object.fromEntries(check.plots.map((p) => [p.id, p.drawn]))).toEqual({ 'plot-final-loss': 2, 'plot-loss-diff': 2, 'plot-forward-diff': 2, 'plot-ms-per-step': 2 });
    const rows = await check.page.evaluate(() =>
      [...document.querySelectorAll('tr[data-suite]')].map((tr) => ({
        suite: tr.dataset.suite,
        status: tr.dataset.status,
        colour: getComputedStyle(tr.querySelector('td.status')!).backgroundColor,
        link: tr.querySelector('a')!.getAttribute('href'),
      })),
    );
    expect(rows).toEqual([
      { suite: 'synthetic-fail', status: 'fail', colour: RED, link: 'fail/report.html' },
      { suite: 'synthetic-pass', status: 'pass', colour: GREEN, link: 'pass/report.html' },
    ]);
    const banner = await check.page.evaluate(() => getComputedStyle(document.getElementById('dashboard-banner')!).backgroundColor);
    expect(banner).toBe(RED);
    // The links lead to the reports written above.
    for (const r of rows) expect(existsSync(join(OUT, r.link ?? 'no link'))).toBe(true);
    await check.page.close();
  });

  it('keeps titles, wrapped legends and axis labels apart, and each suite one colour in every plot', async () => {
    const dir = join(OUT, 'crowded');
    const check = await open(join(dir, 'index.html'), join(dir, 'index.png'));
    expectEveryPlotDrawn(check);
    const plots = await check.page.evaluate(() =>
      [...document.querySelectorAll('div.plot')].map((el) => {
        const box = (selector: string) => {
          const b = (el.querySelector(selector) as unknown as { getBoundingClientRect(): { left: number; top: number; right: number; bottom: number } }).getBoundingClientRect();
          return { left: b.left, top: b.top, right: b.right, bottom: b.bottom };
        };
        const ticks = [...el.querySelectorAll('.xtick text')].map((t) => (t as unknown as { getBoundingClientRect(): { bottom: number } }).getBoundingClientRect().bottom);
        // The colours plotly drew with (its defaults fill in what a trace leaves unset).
        const data = (el as unknown as { _fullData: Array<{ name: string; line: { color: string } }> })._fullData;
        return {
          id: el.id,
          title: box('.gtitle'),
          legend: box('.legend'),
          area: box('.nsewdrag'),
          ticksBottom: Math.max(...ticks),
          legendRows: new Set([...el.querySelectorAll('.legend .traces')].map((t) => (t as unknown as { getBoundingClientRect(): { top: number } }).getBoundingClientRect().top)).size,
          colours: data.map((t) => [t.name, t.line.color]),
        };
      }),
    );
    expect(plots).toHaveLength(4);
    const colourOf = new Map<string, string>();
    for (const p of plots) {
      // 14 entries cannot fit one row at this width: the case where a legend above the plot climbed into its title.
      expect(p.legendRows, `${p.id}: legend rows`).toBeGreaterThan(1);
      expect(p.title.bottom, `${p.id}: title above the plotting area`).toBeLessThanOrEqual(p.area.top);
      expect(p.legend.top, `${p.id}: legend below the title`).toBeGreaterThan(p.title.bottom);
      expect(p.legend.top, `${p.id}: legend below the axis labels`).toBeGreaterThanOrEqual(p.ticksBottom);
      for (const [name, colour] of p.colours) {
        const suite = name.split(' · ')[0];
        expect(colour, `${p.id}: ${name}`).toBe(colourOf.get(suite) ?? colour);
        colourOf.set(suite, colour);
      }
    }
    expect(new Set(colourOf.values()).size).toBe(colourOf.size);
    await check.page.close();
  });
});
