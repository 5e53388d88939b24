/**
 * A Markdown summary of one run for a PR comment or `$GITHUB_STEP_SUMMARY`: the verdict, the
 * headline numbers, failing checks in full and every check folded under <details> (a run has
 * dozens of forward tensors; a comment that lists them all buries the one that failed).
 */
import { describeAdapterLine } from '../../backend/webgpu.ts';
import type { Verdict } from '../verdict.ts';
import { type Check, formatNumber, verdictChecks } from './checks.ts';

/** Table cells are single-line; `|` ends a cell and raw HTML would be rendered by GitHub. */
export function escapeMarkdownCell(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

const STATUS_TEXT = { pass: '✅ pass', fail: '❌ FAIL', skipped: '⚪ skipped' } as const;

function checksTable(checks: readonly Check[]): string[] {
  const rows = checks.map((c) =>
    [
      c.section,
      `\`${c.name.replace(/`/g, "'")}\``,
      STATUS_TEXT[c.status],
      c.maxAbsDiff === undefined ? '—' : formatNumber(c.maxAbsDiff),
      c.tolerance,
      c.failing || '—',
    ]
      .map((cell, i) => (i === 1 ? cell.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ') : escapeMarkdownCell(cell)))
      .join(' | '),
  );
  return ['| section | check | result | max\\|diff\\| | tolerance | failing |', '|---|---|---|---:|---|---|', ...rows.map((r) => `| ${r} |`)];
}

export function renderMarkdown(verdict: Verdict): string {
  const checks = verdictChecks(verdict);
  const failing = checks.filter((c) => c.status === 'fail');
  const skipped = checks.filter((c) => c.status === 'skipped');
  const { train, forward, generation } = verdict;

  const facts = [`model \`${verdict.model}\``, `backend \`${verdict.backend}\``];
  if (verdict.environment?.adapter) facts.push(`GPU ${escapeMarkdownCell(describeAdapterLine(verdict.environment.adapter))}`);
  if (forward) facts.push(`forward max|diff| ${formatNumber(forward.maxAbsDiff)}`);
  if (train) {
    facts.push(`${train.steps} steps`, `loss max|diff| ${formatNumber(train.maxAbsDiff)}`, `${formatNumber(train.msPerStep)} ms/step`);
    if (train.stoppedAt) facts.push(`**stopped at step ${train.stoppedAt.step}: ${escapeMarkdownCell(train.stoppedAt.reason)}**`);
  }
  if (generation) {
    const tokensOk = generation.tokensMatchReference ?? generation.matchesReference;
    const logitsOk = generation.logitsWithinTolerance ?? generation.matchesReference;
    facts.push(`generation tokens ${tokensOk ? 'match' : '**differ from**'} reference, step logits ${logitsOk ? 'within' : '**outside**'} tolerance`);
  }

  const lines = [
    `### ${verdict.pass ? '✅ PASS' : '❌ FAIL'}: ${escapeMarkdownCell(verdict.suite)}`,
    '',
    facts.join(' · '),
    '',
  ];
  if (failing.length > 0) {
    lines.push(`**${failing.length} of ${checks.length} checks failed**`, '', ...checksTable(failing), '');
  }
  for (const c of skipped) lines.push(`⚪ skipped: ${escapeMarkdownCell(c.message)}`, '');
  lines.push(
    '<details>',
    `<summary>All ${checks.length} checks (${checks.length - failing.length - skipped.length} pass, ${failing.length} fail, ${skipped.length} skipped)</summary>`,
    '',
    ...checksTable(checks),
    '',
    '</details>',
    '',
  );
  return lines.join('\n');
}
