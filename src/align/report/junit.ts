/**
 * JUnit XML for one run, the format every CI test viewer reads: one <testsuite> per run, one
 * <testcase> per check (see checks.ts), a <failure> whose message carries the numbers (max|diff|,
 * tolerance, failing steps, first failing step) so the CI page shows why without opening the HTML.
 */
import { describeAdapterLine } from '../../backend/webgpu.ts';
import type { Verdict } from '../verdict.ts';
import { verdictChecks } from './checks.ts';

/**
 * Escapes text for XML content and double-quoted attributes. Characters XML 1.0 forbids outright
 * (C0 controls other than tab, LF, CR; lone surrogates) cannot be escaped, only replaced.
 */
export function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    // Attribute values normalise raw newlines and tabs to spaces; keep them as character references.
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
    .replace(/\t/g, '&#9;');
}

function attrs(pairs: Record<string, string | number>): string {
  return Object.entries(pairs)
    .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
    .join('');
}

function seconds(verdict: Verdict): number {
  const ms = Date.parse(verdict.finishedAt) - Date.parse(verdict.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : 0;
}

export function renderJunit(verdict: Verdict): string {
  const checks = verdictChecks(verdict);
  const failures = checks.filter((c) => c.status === 'fail').length;
  const skipped = checks.filter((c) => c.status === 'skipped').length;
  const time = seconds(verdict).toFixed(3);
  const suiteName = `parity.${verdict.suite}`;
  const env = verdict.environment;
  const properties: Record<string, string> = {
    model: verdict.model,
    backend: verdict.backend,
    pass: String(verdict.pass),
    suiteDir: verdict.suiteDir,
    node: env.node,
    tfjs: env.tfjs,
    platform: env.platform,
    commit: env.commit ?? 'unknown',
  };
  if (env.adapter) properties.adapter = describeAdapterLine(env.adapter);
  if (verdict.train) properties.msPerStep = String(verdict.train.msPerStep);

  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: 'parity', tests: checks.length, failures, errors: 0, skipped, time })}>`,
    `  <testsuite${attrs({ name: suiteName, tests: checks.length, failures, errors: 0, skipped, time, timestamp: verdict.startedAt })}>`,
    '    <properties>',
    ...Object.entries(properties).map(([name, value]) => `      <property${attrs({ name, value })}/>`),
    '    </properties>',
  ];
  for (const c of checks) {
    // Per-check timings are not measured; the whole run's time sits on the testsuite.
    const open = `    <testcase${attrs({ classname: `${suiteName}.${c.section}`, name: c.name, time: 0 })}`;
    if (c.status === 'pass') {
      lines.push(`${open}/>`);
      continue;
    }
    lines.push(`${open}>`);
    if (c.status === 'skipped') {
      lines.push(`      <skipped${attrs({ message: c.message })}/>`, '    </testcase>');
      continue;
    }
    // message: every number on one line (what CI viewers show); body: what failed and where.
    lines.push(`      <failure${attrs({ message: c.message, type: `${c.section}-mismatch` })}>${escapeXml(c.failing)}</failure>`);
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
