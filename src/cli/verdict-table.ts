/** The human-readable verdict printed by `npm run align`. */
import { describeMetricTolerance } from '../align/report/checks.ts';
import type { Verdict } from '../align/verdict.ts';

const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));

export function formatVerdict(v: Verdict): string {
  const lines: string[] = [];
  if (v.forward) {
    const f = v.forward;
    lines.push(`forward (atol ${f.atol}, rtol ${f.rtol})`);
    const width = Math.max(...f.tensors.map((t) => t.name.length), 6);
    lines.push(`  ${'tensor'.padEnd(width)}  max|diff|  max rel    pass`);
    for (const t of f.tensors) lines.push(`  ${t.name.padEnd(width)}  ${fmt(t.maxAbsDiff).padEnd(9)}  ${fmt(t.maxRelDiff).padEnd(9)}  ${t.pass ? 'ok' : 'FAIL'}`);
    const widened = f.tensors.filter((t) => t.envelope && t.envelope.widenedElements > 0);
    if (widened.length) {
      const widest = widened.reduce((a, b) => (b.envelope!.maxTolerance > a.envelope!.maxTolerance ? b : a));
      lines.push(`  reference float64 precision widened ${widened.length} tensor(s) past atol (k ${widest.envelope!.k}); widest ${widest.name} to ${fmt(widest.envelope!.maxTolerance)}`);
    }
    if (f.checkpoints) {
      const failing = f.checkpoints.filter((c) => !c.pass);
      const guessed = f.checkpoints.filter((c) => c.match === 'value').length;
      const source = f.reference ? `${f.reference.kind} reference${f.reference.runtime ? ` (${f.reference.runtime.name} ${f.reference.runtime.version}, ${f.reference.runtime.threads} thread, optimization ${f.reference.runtime.optimization})` : ''}` : 'reference';
      lines.push(`  sub-block checkpoints: ${f.checkpoints.length} against the ${source}, ${failing.length} over tolerance${guessed ? `, ${guessed} matched by value (guesses)` : ''}`);
    }
    const d = f.divergence;
    if (d) {
      lines.push(`  first divergence: ${d.name}  (max|diff| ${fmt(d.maxAbsDiff)}, cosine ${d.cosine.toFixed(6)}, reference ${d.reference} by ${d.match}${d.lastPassing ? `; last passing ${d.lastPassing}` : ''})`);
    } else lines.push(`  first divergence: ${f.firstDivergence ?? 'none'}`);
  }
  if (v.train) {
    const t = v.train;
    lines.push(`training curve: ${t.steps} steps, ${t.msPerStep.toFixed(1)} ms/step${t.stoppedAt ? `, STOPPED at step ${t.stoppedAt.step}: ${t.stoppedAt.reason}` : ''}`);
    if (t.memory) lines.push(`  memory (estimate): ${t.memory.estimate}`);
    const width = Math.max(...t.metrics.map((m) => m.metric.length), 6);
    lines.push(`  ${'metric'.padEnd(width)}  policy       atol     rtol     max|diff|  max rel    failing  first   pass`);
    for (const m of t.metrics) {
      lines.push(`  ${m.metric.padEnd(width)}  ${m.policy.padEnd(11)}  ${fmt(m.atol).padEnd(7)}  ${fmt(m.rtol).padEnd(7)}  ${fmt(m.maxAbsDiff).padEnd(9)}  ${fmt(m.maxRelDiff).padEnd(9)}  ${String(m.failingSteps).padEnd(7)}  ${String(m.firstFailingStep ?? '-').padEnd(6)}  ${m.pass ? 'ok' : 'FAIL'}`);
    }
    // Envelopes and hints under the table: the atol/rtol columns show an envelope's floor only.
    for (const m of t.metrics) {
      if (m.envelope) lines.push(`  ${m.metric}: tolerance ${describeMetricTolerance(m)}`);
      if (m.hint) lines.push(`  ${m.metric}: ${m.hint}`);
    }
  }
  if (v.golden) {
    const g = v.golden;
    if (!g.present) lines.push(`golden (${g.backend}): none yet — bless one with npm run baseline -- bless ${v.suite} --from <run folder> --reason "…"`);
    else {
      const failing = g.metrics.filter((m) => !m.pass).map((m) => `${m.metric} (first at step ${m.firstFailingStep})`);
      lines.push(`golden (${g.backend}, deterministic): ${g.pass ? 'bit-identical' : `DIFFERS: ${failing.join(', ')}`}`);
    }
  }
  if (v.generation) {
    const g = v.generation;
    const tokens = g.tokensMatchReference ?? g.matchesReference;
    const logits = g.logitsWithinTolerance ?? g.matchesReference;
    lines.push(`generation: tokens = reference ${tokens ? 'yes' : 'NO'}, cached ≡ uncached ${g.cachedEqualsUncached ? 'yes' : 'NO'}, step logits within tolerance ${logits ? 'yes' : 'NO'} (max|diff| ${fmt(g.maxLogitDiff)}, tolerance ${fmt(g.logitAtol ?? Number.NaN)}${g.logitEnvelope ? `: ${g.logitEnvelope}` : ''})`);
  }
  if (v.environment.peakRssBytes) lines.push(`peak memory (RSS): ${(v.environment.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  lines.push(`verdict: ${v.pass ? 'ALIGNED' : 'MISALIGNED'} (${v.suite}, backend ${v.backend})`);
  return lines.join('\n');
}
