import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeMarkdownCell, renderMarkdown } from '../../../src/align/report/markdown.ts';
import { writeRunReports } from '../../../src/align/report/write.ts';
import { syntheticRun } from './synthetic.ts';

/** Rows of every Markdown table in the text, split on unescaped pipes. */
function tableRows(md: string): string[][] {
  return md
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('|---'))
    .map((l) => l.slice(2, -2).split(/(?<!\\) \| /));
}

describe('renderMarkdown', () => {
  it('headlines a pass with backend and ms/step, and lists failures nowhere', () => {
    const md = renderMarkdown(syntheticRun({ aligned: true }).verdict);
    expect(md.split('\n')[0]).toBe('### ✅ PASS: synthetic-pass');
    expect(md).toContain('backend `wasm`');
    expect(md).toContain('12.5 ms/step');
    expect(md).toContain('200 steps');
    expect(md).not.toContain('checks failed');
    expect(md).toContain('<summary>All 15 checks (15 pass, 0 fail, 0 skipped)</summary>');
  });

  it('puts failing checks in their own table, with the numbers', () => {
    const { verdict } = syntheticRun({ aligned: false });
    const md = renderMarkdown(verdict);
    expect(md.split('\n')[0]).toBe('### ❌ FAIL: synthetic-fail');
    expect(md).toContain('**4 of 15 checks failed**');
    expect(md).toContain('<summary>All 15 checks (10 pass, 4 fail, 1 skipped)</summary>');
    expect(md).toContain('⚪ skipped: no golden for backend wasm');
    const loss = verdict.train!.metrics[0];
    const lossRows = tableRows(md).filter((r) => r[1] === '`loss`');
    // Once in the failing table, once in the full one.
    expect(lossRows).toHaveLength(2);
    expect(lossRows[0]).toEqual(['train', '`loss`', '❌ FAIL', String(Number(loss.maxAbsDiff.toPrecision(4))), 'atol 0.001 + rtol 0.001·\\|ref\\|', `${loss.failingSteps} of 200 steps (0 allowed), first at step ${loss.firstFailingStep}`]);
  });

  it('keeps every table row at six cells whatever the names hold', () => {
    const md = renderMarkdown(syntheticRun({ aligned: false, suite: 'a|b', extraTensorName: 'x|y\nz<b>' }).verdict);
    for (const row of tableRows(md)) expect(row).toHaveLength(6);
    expect(md).toContain('### ❌ FAIL: a\\|b');
    // Raw HTML only inside code spans, where GitHub prints it literally.
    expect(md.replace(/`[^`\n]*`/g, '')).not.toContain('<b>');
    expect(md).toContain('`x\\|y z<b>`');
  });

  it('reports an early stop', () => {
    const { verdict } = syntheticRun({ aligned: true });
    verdict.train!.stoppedAt = { step: 7, reason: 'grad norm is Inf' };
    verdict.pass = false;
    expect(renderMarkdown(verdict)).toContain('**stopped at step 7: grad norm is Inf**');
  });
});

describe('escapeMarkdownCell', () => {
  it('escapes pipes, HTML and newlines', () => {
    expect(escapeMarkdownCell('a|b<i>&\nc')).toBe('a\\|b&lt;i&gt;&amp; c');
  });
});

describe('writeRunReports and $GITHUB_STEP_SUMMARY', () => {
  // sharedPlotly: link to a bundle path instead of copying 11 MB into every temp folder.
  const write = (dir: string, aligned: boolean, env: Record<string, string | undefined>) =>
    writeRunReports(join(dir, aligned ? 'pass' : 'fail'), syntheticRun({ aligned }), { env, sharedPlotly: join(dir, 'plotly.js') });

  it('appends each run’s summary.md to the step summary CI gives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-summary-'));
    const summary = join(dir, 'step-summary.md');
    await write(dir, true, { GITHUB_STEP_SUMMARY: summary });
    await write(dir, false, { GITHUB_STEP_SUMMARY: summary });
    const pass = readFileSync(join(dir, 'pass', 'summary.md'), 'utf8');
    const fail = readFileSync(join(dir, 'fail', 'summary.md'), 'utf8');
    expect(readFileSync(summary, 'utf8')).toBe(`${pass}\n${fail}\n`);
  });

  it('reads GITHUB_STEP_SUMMARY from the process environment by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-summary-'));
    const summary = join(dir, 'step-summary.md');
    const before = process.env.GITHUB_STEP_SUMMARY;
    process.env.GITHUB_STEP_SUMMARY = summary;
    try {
      await writeRunReports(join(dir, 'run'), syntheticRun({ aligned: false }), { sharedPlotly: join(dir, 'plotly.js') });
    } finally {
      if (before === undefined) delete process.env.GITHUB_STEP_SUMMARY;
      else process.env.GITHUB_STEP_SUMMARY = before;
    }
    expect(readFileSync(summary, 'utf8')).toContain('### ❌ FAIL: synthetic-fail');
  });
});
