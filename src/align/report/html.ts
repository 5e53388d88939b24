/**
 * The HTML report of one align run: verdict banner, loss curves against the reference with the
 * tolerance band, |diff| per step, grad norm and learning rate, per-tensor forward errors,
 * generations, per-metric numbers and the environment. One self-contained page that opens from
 * file:// with no network: plotly is loaded from a bundle copied next to it (write.ts), the plot
 * data sits in the page as JSON.
 *
 * Everything here is a pure function of the run, so tests can check the page without a browser;
 * the browser test checks that every plot really renders.
 */
import { describeAdapterLine } from '../../backend/webgpu.ts';
import type { Curve } from '../curve.ts';
import { DETERMINISTIC, isClose } from '../compare-curve.ts';
import type { CheckpointComparison, Divergence, MetricComparison, TensorComparison, Verdict } from '../verdict.ts';
import { type Check, type CheckStatus, describeMetricTolerance, describeTensorTolerance, divergentTensor, firstMismatch, formatNumber, formatTolerance, toleranceAtIndex, verdictChecks } from './checks.ts';
import { type PlotSpec, type PlotTrace, escapeHtml, plotDiv, renderPage, table } from './page.ts';

export interface RunReportInput {
  verdict: Verdict;
  /** Our curve (curve.json); absent when the run did not train. */
  curve?: Curve;
  /** The reference curve over the same steps (reference-curve.json). */
  referenceCurve?: Curve;
}

const COLOUR = {
  reference: '#57606a',
  ours: '#0969da',
  band: 'rgba(31,136,61,0.18)',
  pass: '#1a7f37',
  fail: '#cf222e',
  tolerance: '#9a6700',
} as const;

/** Values of `metric` at `steps`, looked up by step number; null where the curve lacks the step. */
export function valuesAtSteps(curve: Curve | undefined, metric: string, steps: readonly number[]): Array<number | null> {
  const values = curve?.metrics[metric];
  if (!curve || !values) return steps.map(() => null);
  const at = new Map<number, number>();
  curve.steps.forEach((s, i) => at.set(s, values[i]));
  return steps.map((s) => {
    const v = at.get(s);
    return v === undefined || !Number.isFinite(v) ? null : v;
  });
}

/** A log axis cannot place 0 or a non-finite value: those points become gaps. */
function forLogAxis(values: ReadonlyArray<number | null>): Array<number | null> {
  return values.map((v) => (v === null || !(v > 0) || !Number.isFinite(v) ? null : v));
}

function baseLayout(title: string, yTitle: string, logY = false): Record<string, unknown> {
  return {
    title: { text: title },
    height: 340,
    // Legend between the title and the plot: below, it collides with the axis title and tick labels.
    margin: { l: 70, r: 20, t: 70, b: 50 },
    xaxis: { title: { text: 'step' } },
    yaxis: { title: { text: yTitle }, ...(logY ? { type: 'log', exponentformat: 'e' } : {}) },
    legend: { orientation: 'h', x: 0, y: 1, yanchor: 'bottom' },
    hovermode: 'x unified',
  };
}

function line(name: string, x: readonly number[], y: ReadonlyArray<number | null>, colour: string, extra: PlotTrace = {}): PlotTrace {
  return { type: 'scatter', mode: 'lines', name, x, y, line: { color: colour, width: 1.5 }, ...extra };
}

function lossPlot(steps: number[], ours: Array<number | null>, ref: Array<number | null>, cmp: MetricComparison | undefined): PlotSpec {
  const traces: PlotTrace[] = [];
  if (cmp) {
    const tol = ref.map((r, i) => (r === null ? null : toleranceAtIndex(cmp, i, r)));
    // The band is two traces: an invisible lower edge, then the upper edge filled down to it.
    traces.push(line('band lower', steps, ref.map((r, i) => (r === null ? null : r - (tol[i] as number))), COLOUR.band, { line: { width: 0 }, showlegend: false, hoverinfo: 'skip' }));
    traces.push(
      line(cmp.envelope ? `tolerance envelope (max(floor, ${cmp.envelope.k} × noise of ${cmp.envelope.source}))` : `tolerance band (${formatTolerance(cmp.atol, cmp.rtol, cmp.policy)})`, steps, ref.map((r, i) => (r === null ? null : r + (tol[i] as number))), COLOUR.band, {
        line: { width: 0 },
        fill: 'tonexty',
        fillcolor: COLOUR.band,
        hoverinfo: 'skip',
      }),
    );
  }
  traces.push(line('reference', steps, ref, COLOUR.reference));
  traces.push(line('ours', steps, ours, COLOUR.ours));
  if (cmp) {
    // The same rule as the comparison (the verdict's own per-step tolerance), so the red marks are the failing steps it counted.
    const bad = steps.map((_, i) => i).filter((i) => {
      if (ref[i] === null) return false;
      const a = ours[i] ?? Number.POSITIVE_INFINITY;
      const r = ref[i] as number;
      return cmp.policy === 'deterministic' ? !isClose(a, r, DETERMINISTIC) : !(Number.isFinite(a) && Math.abs(a - r) <= toleranceAtIndex(cmp, i, r));
    });
    if (bad.length > 0) {
      traces.push({
        type: 'scatter',
        mode: 'markers',
        name: `failing steps (${bad.length})`,
        x: bad.map((i) => steps[i]),
        y: bad.map((i) => ours[i] ?? ref[i]),
        marker: { color: COLOUR.fail, symbol: 'x', size: 7 },
      });
    }
  }
  return {
    id: 'plot-loss',
    traces,
    layout: baseLayout('Loss: ours vs reference', 'loss'),
    caption: cmp ? 'Shaded: the tolerance band around the reference; red crosses: steps outside it (missing steps included).' : 'No loss comparison in the verdict.',
  };
}

function diffPlot(steps: number[], ours: Array<number | null>, ref: Array<number | null>, cmp: MetricComparison | undefined): PlotSpec {
  const diff = steps.map((_, i) => (ours[i] === null || ref[i] === null ? null : Math.abs((ours[i] as number) - (ref[i] as number))));
  const traces: PlotTrace[] = [line('|ours − reference|', steps, forLogAxis(diff), COLOUR.ours)];
  if (cmp && cmp.policy !== 'deterministic') {
    const name = cmp.envelope ? `tolerance: max(floor, ${cmp.envelope.k} × noise of ${cmp.envelope.source})` : 'tolerance atol + rtol·|ref|';
    traces.push(line(name, steps, forLogAxis(ref.map((r, i) => (r === null ? null : toleranceAtIndex(cmp, i, r)))), COLOUR.tolerance, { line: { color: COLOUR.tolerance, dash: 'dash', width: 1 } }));
  }
  const exact = diff.filter((d) => d === 0).length;
  return {
    id: 'plot-loss-diff',
    traces,
    layout: baseLayout('|loss diff| per step (log scale)', '|diff|', true),
    caption: `A log axis cannot show 0: ${exact} step(s) with identical loss appear as gaps; steps we lack are gaps too (they fail, see the red marks above).`,
  };
}

function pairPlot(id: string, title: string, metric: string, steps: number[], ours?: Curve, ref?: Curve): PlotSpec {
  return {
    id,
    traces: [line('reference', steps, valuesAtSteps(ref, metric, steps), COLOUR.reference), line('ours', steps, valuesAtSteps(ours, metric, steps), COLOUR.ours)],
    layout: baseLayout(title, metric),
  };
}

function forwardPlot(tensors: readonly TensorComparison[], firstDivergence: string | null): PlotSpec {
  const names = tensors.map((t) => t.name);
  const traces: PlotTrace[] = [
    {
      type: 'bar',
      name: 'max|diff|',
      x: names,
      y: forLogAxis(tensors.map((t) => t.maxAbsDiff)),
      marker: { color: tensors.map((t) => (t.pass ? COLOUR.pass : COLOUR.fail)) },
      hovertext: tensors.map((t) => `${t.name}: max|diff| ${formatNumber(t.maxAbsDiff)} (${t.pass ? 'pass' : 'FAIL'})`),
      hoverinfo: 'text',
    },
    { type: 'scatter', mode: 'lines+markers', name: 'atol (tolerance floor)', x: names, y: forLogAxis(tensors.map((t) => t.atol)), line: { color: COLOUR.tolerance, dash: 'dash', width: 1 }, marker: { size: 4 } },
  ];
  const first = tensors.find((t) => t.name === firstDivergence);
  if (first) {
    traces.push({
      type: 'scatter',
      mode: 'markers',
      name: `first divergence: ${first.name}`,
      x: [first.name],
      y: forLogAxis([first.maxAbsDiff]),
      cliponaxis: false,
      marker: { color: COLOUR.fail, symbol: 'star', size: 14 },
    });
  }
  const layout = baseLayout('Forward: max|diff| per tensor (log scale)', 'max|diff|', true);
  return {
    id: 'plot-forward',
    traces,
    layout: { ...layout, height: 480, margin: { l: 70, r: 20, t: 80, b: 160 }, xaxis: { tickangle: -45, automargin: true }, hovermode: 'closest' },
    caption: 'Green bars pass, red bars fail. A tensor passes when every element has |diff| ≤ atol + rtol·|ref|, so a bar above the atol line can still pass; exact zeros are not drawn on a log axis.',
  };
}

/**
 * Sub-block checkpoints in model order: where the error jumps is where the port computes something
 * else. Marker shape says how the reference value was matched (a value match is a guess).
 */
function checkpointPlot(checkpoints: readonly CheckpointComparison[], divergence: Divergence | null | undefined): PlotSpec {
  const names = checkpoints.map((c) => c.name);
  const symbol = { output: 'circle', scope: 'circle', value: 'diamond-open' } as const;
  const traces: PlotTrace[] = [
    {
      type: 'scatter',
      mode: 'lines+markers',
      name: 'max|diff|',
      x: names,
      y: forLogAxis(checkpoints.map((c) => c.maxAbsDiff)),
      line: { color: COLOUR.reference, width: 1 },
      marker: { color: checkpoints.map((c) => (c.pass ? COLOUR.pass : COLOUR.fail)), symbol: checkpoints.map((c) => symbol[c.match]), size: 7 },
      hovertext: checkpoints.map((c) => `${c.name}: max|diff| ${formatNumber(c.maxAbsDiff)}, cosine ${c.cosine.toFixed(6)} (${c.pass ? 'pass' : 'FAIL'}) vs ${c.reference} [${c.match}]`),
      hoverinfo: 'text',
    },
    { type: 'scatter', mode: 'lines', name: 'atol (tolerance floor)', x: names, y: forLogAxis(checkpoints.map((c) => c.atol)), line: { color: COLOUR.tolerance, dash: 'dash', width: 1 } },
  ];
  const first = checkpoints.find((c) => c.name === divergence?.name);
  if (first) {
    traces.push({ type: 'scatter', mode: 'markers', name: `first divergence: ${first.name}`, x: [first.name], y: forLogAxis([first.maxAbsDiff]), cliponaxis: false, marker: { color: COLOUR.fail, symbol: 'star', size: 14 } });
  }
  const layout = baseLayout('Sub-block checkpoints: max|diff| in model order (log scale)', 'max|diff|', true);
  return {
    id: 'plot-checkpoints',
    traces,
    layout: { ...layout, height: 520, margin: { l: 70, r: 20, t: 80, b: 200 }, xaxis: { tickangle: -60, automargin: true }, hovermode: 'closest' },
    caption: 'Each point is one of our sub-block values against its reference value, in the order the model computes them. Green passes, red fails; open diamonds were matched by value (a guess), not by name or module scope. Exact zeros are not drawn on a log axis.',
  };
}

const CORE_METRICS = new Set(['loss', 'lr', 'grad_norm']);

/** Every plot the report draws for this run, in page order. */
export function runPlots(run: RunReportInput): PlotSpec[] {
  const { verdict, curve, referenceCurve } = run;
  const plots: PlotSpec[] = [];
  const steps = referenceCurve?.steps ?? curve?.steps;
  if (steps && steps.length > 0) {
    const ours = valuesAtSteps(curve, 'loss', steps);
    const ref = valuesAtSteps(referenceCurve, 'loss', steps);
    const cmp = verdict.train?.metrics.find((m) => m.metric === 'loss');
    plots.push(lossPlot(steps, ours, ref, cmp));
    if (curve && referenceCurve) plots.push(diffPlot(steps, ours, ref, cmp));
    const has = (metric: string) => Boolean(curve?.metrics[metric] ?? referenceCurve?.metrics[metric]);
    if (has('grad_norm')) plots.push(pairPlot('plot-grad-norm', 'Gradient norm (before clipping)', 'grad_norm', steps, curve, referenceCurve));
    if (has('lr')) plots.push(pairPlot('plot-lr', 'Learning rate', 'lr', steps, curve, referenceCurve));
    const parts = [...new Set([...Object.keys(referenceCurve?.metrics ?? {}), ...Object.keys(curve?.metrics ?? {})])].filter((m) => !CORE_METRICS.has(m)).sort();
    for (const part of parts) plots.push(pairPlot(`plot-part-${part.replace(/[^A-Za-z0-9_-]/g, '_')}`, `Loss part: ${part}`, part, steps, curve, referenceCurve));
  }
  if (verdict.forward && verdict.forward.tensors.length > 0) plots.push(forwardPlot(verdict.forward.tensors, divergentTensor(verdict.forward)));
  if (verdict.forward?.checkpoints && verdict.forward.checkpoints.length > 0) plots.push(checkpointPlot(verdict.forward.checkpoints, verdict.forward.divergence));
  return plots;
}

function passCell(pass: boolean): string {
  return pass ? '<span class="ok">pass</span>' : '<span class="bad">FAIL</span>';
}

function statusCell(status: CheckStatus): string {
  return status === 'skipped' ? '<span class="skip">skipped</span>' : passCell(status === 'pass');
}

const num = (x: number | null | undefined) => escapeHtml(formatNumber(x));

function banner(verdict: Verdict): string {
  const status = verdict.pass ? 'pass' : 'fail';
  const sub = `${verdict.suite} · model ${verdict.model} · backend ${verdict.backend} · ${verdict.startedAt}`;
  return `<header id="verdict-banner" class="banner ${status}" data-verdict="${status}">${verdict.pass ? 'PASS' : 'FAIL'}: ${escapeHtml(verdict.suite)}<small>${escapeHtml(sub)}</small></header>`;
}

function facts(verdict: Verdict): string {
  const items: Array<[string, string]> = [];
  if (verdict.forward) items.push(['forward max|diff|', formatNumber(verdict.forward.maxAbsDiff)], ['first divergence', verdict.forward.firstDivergence ?? 'none']);
  const t = verdict.train;
  if (t) {
    items.push(['steps', String(t.steps)], ['loss max|diff|', formatNumber(t.maxAbsDiff)], ['failing loss steps', String(t.failingSteps)], ['first failing step', t.firstFailingStep === null ? 'none' : String(t.firstFailingStep)], ['ms / step', formatNumber(t.msPerStep)]);
    if (t.memory) items.push(['memory (estimate)', t.memory.estimate]);
    if (t.stoppedAt) items.push(['stopped early', `step ${t.stoppedAt.step}: ${t.stoppedAt.reason}`]);
  }
  if (verdict.generation) items.push(['generation', verdict.generation.pass ? 'matches' : 'differs']);
  return `<section class="facts">${items.map(([k, v]) => `<div>${escapeHtml(k)}<b>${escapeHtml(v)}</b></div>`).join('')}</section>`;
}

function checksSection(checks: readonly Check[]): string {
  const count = (status: CheckStatus) => checks.filter((c) => c.status === status).length;
  const rows = checks.map((c) => [escapeHtml(c.section), `<code>${escapeHtml(c.name)}</code>`, statusCell(c.status), c.maxAbsDiff === undefined ? '—' : num(c.maxAbsDiff), escapeHtml(c.tolerance), escapeHtml(c.failing || '—')]);
  const skipped = count('skipped') > 0 ? `, ${count('skipped')} skipped` : '';
  return `<h2 id="checks">Checks: ${count('pass')} pass, ${count('fail')} fail${skipped}</h2>${table(['section', 'check', 'result', 'max|diff|', 'tolerance', 'failing'], rows, checks.map((c) => (c.status === 'pass' ? '' : `class="${c.status === 'fail' ? 'fail' : 'skipped'}"`)))}`;
}

function metricsTable(metrics: readonly MetricComparison[]): string {
  const rows = metrics.map((m) => [
    `<code>${escapeHtml(m.metric)}</code>${m.hint ? `<br><span class="note">${escapeHtml(m.hint)}</span>` : ''}`,
    escapeHtml(m.policy),
    escapeHtml(describeMetricTolerance(m)),
    String(m.steps),
    num(m.maxAbsDiff),
    m.maxAbsDiffStep === null ? '—' : String(m.maxAbsDiffStep),
    num(m.maxRelDiff),
    `${m.failingSteps} / ${m.allowedFailingSteps}`,
    m.firstFailingStep === null ? '—' : String(m.firstFailingStep),
    passCell(m.pass),
  ]);
  return table(['metric', 'policy', 'tolerance', 'steps', 'max|diff|', 'at step', 'max rel', 'failing / allowed', 'first failing', 'result'], rows, metrics.map((m) => (m.pass ? '' : 'class="fail"')));
}

function trainSection(run: RunReportInput, plots: readonly PlotSpec[]): string {
  const t = run.verdict.train;
  // Every spec handed to renderPage needs its div, so the curve plots decide as much as the verdict.
  const curvePlots = plots.filter((p) => p.id !== 'plot-forward' && p.id !== 'plot-checkpoints');
  if (!t && curvePlots.length === 0) return '';
  const missing = !run.curve || !run.referenceCurve ? `<p class="note">Curves missing from the run folder (${[!run.curve && 'curve.json', !run.referenceCurve && 'reference-curve.json'].filter(Boolean).join(', ')}): only the numbers below are shown.</p>` : '';
  const stopped = t?.stoppedAt ? `<p class="bad">Training stopped early at step ${t.stoppedAt.step}: ${escapeHtml(t.stoppedAt.reason)}</p>` : '';
  return `<h2 id="train">Training</h2>${stopped}${missing}${curvePlots.map(plotDiv).join('\n')}${t ? `<h3>Per-metric comparison</h3>${metricsTable(t.metrics)}` : ''}`;
}

function forwardSection(verdict: Verdict, plots: readonly PlotSpec[]): string {
  const f = verdict.forward;
  if (!f) return '';
  const plot = plots.find((p) => p.id === 'plot-forward');
  const rows = f.tensors.map((t) => [`<code>${escapeHtml(t.name)}</code>`, escapeHtml(`[${t.shape.join(', ')}]`), String(t.compared), num(t.maxAbsDiff), num(t.maxRelDiff), escapeHtml(describeTensorTolerance(t)), passCell(t.pass)]);
  const divergent = divergentTensor(f);
  const attrsPerRow = f.tensors.map((t) => [t.pass ? '' : 'fail', t.name === divergent ? 'first-divergence' : ''].filter(Boolean).join(' ')).map((c) => (c ? `class="${c}"` : ''));
  const source = f.reference ? `<p class="note">Reference: ${escapeHtml(f.reference.kind === 'onnx' ? 'ONNX graphs run live by' : 'stored tensors')} ${f.reference.runtime ? escapeHtml(`${f.reference.runtime.name} ${f.reference.runtime.version} (${f.reference.runtime.threads} thread, graph optimization ${f.reference.runtime.optimization})`) : ''} — ${f.reference.files.map((x) => `<code>${escapeHtml(x)}</code>`).join(', ')}</p>` : '';
  return `<h2 id="forward">Forward: ${f.pass ? 'pass' : 'FAIL'} (first divergence: ${escapeHtml(f.firstDivergence ?? 'none')})</h2>${source}${plot ? plotDiv(plot) : '<p class="note">No tensors compared.</p>'}${table(['tensor', 'shape', 'elements', 'max|diff|', 'max rel', 'tolerance', 'result'], rows, attrsPerRow)}${checkpointSection(f.checkpoints, f.divergence, plots)}`;
}

function checkpointSection(checkpoints: readonly CheckpointComparison[] | undefined, divergence: Divergence | null | undefined, plots: readonly PlotSpec[]): string {
  if (!checkpoints || checkpoints.length === 0) return '';
  const plot = plots.find((p) => p.id === 'plot-checkpoints');
  const where = divergence
    ? `<p class="bad">First divergence: <code>${escapeHtml(divergence.name)}</code> — layer ${escapeHtml(divergence.layer ?? '(none)')}, sub-block <code>${escapeHtml(divergence.subBlock)}</code>, max|diff| ${num(divergence.maxAbsDiff)}, cosine ${escapeHtml(divergence.cosine.toFixed(6))}; reference <code>${escapeHtml(divergence.reference)}</code> (matched by ${escapeHtml(divergence.match)})${divergence.lastPassing ? `; last passing: <code>${escapeHtml(divergence.lastPassing)}</code>` : ''}</p>`
    : '<p>Every checkpoint is within tolerance.</p>';
  const rows = checkpoints.map((c) => [`<code>${escapeHtml(c.name)}</code>`, `<code>${escapeHtml(c.reference)}</code>`, escapeHtml(c.match), escapeHtml(`[${c.shape.join(', ')}]`), num(c.maxAbsDiff), escapeHtml(c.cosine.toFixed(6)), num(c.atol), passCell(c.pass), escapeHtml(c.note)]);
  const attrs = checkpoints.map((c) => [c.pass ? '' : 'fail', c.name === divergence?.name ? 'first-divergence' : ''].filter(Boolean).join(' ')).map((cls) => (cls ? `class="${cls}"` : ''));
  return `<h3 id="checkpoints">Sub-block checkpoints</h3>${where}${plot ? plotDiv(plot) : ''}<details><summary>${checkpoints.length} checkpoints</summary>${table(['checkpoint', 'reference value', 'matched by', 'shape', 'max|diff|', 'cosine', 'atol', 'result', 'how matched'], rows, attrs)}</details>`;
}

function tokens(seq: readonly number[], against: readonly number[] | null): string {
  return `<span class="tokens">${seq.map((tok, i) => `<span${against && against[i] !== tok ? ' class="mismatch"' : ''}>${tok}</span>`).join(' ')}</span>`;
}

function generationSection(verdict: Verdict): string {
  const g = verdict.generation;
  if (!g) return '';
  const rows: string[][] = [];
  const rowAttrs: string[] = [];
  for (const c of g.cases) {
    const mismatch = firstMismatch(c.cached, c.reference);
    for (const [label, seq, against] of [
      ['reference', c.reference, null],
      ['cached', c.cached, c.reference],
      ['uncached', c.uncached, c.reference],
    ] as const) {
      rows.push([label === 'reference' ? `<code>${escapeHtml(c.name)}</code>` : '', escapeHtml(label), tokens(seq, against), label === 'reference' ? num(c.maxLogitDiff) : '', label === 'reference' ? `${passCell(c.pass)}${mismatch >= 0 ? ` (from token ${mismatch})` : ''}` : '']);
      rowAttrs.push(c.pass ? '' : 'class="fail"');
    }
  }
  const tokensOk = g.tokensMatchReference ?? g.matchesReference;
  const logitsOk = g.logitsWithinTolerance ?? g.matchesReference;
  const tolerance = g.logitAtol === undefined ? '' : ` (tolerance ${formatNumber(g.logitAtol)}${g.logitEnvelope ? `: ${g.logitEnvelope}` : ''})`;
  const head = `tokens = reference: ${tokensOk ? 'yes' : 'NO'} · cached = uncached: ${g.cachedEqualsUncached ? 'yes' : 'NO'} · step logits within tolerance: ${logitsOk ? 'yes' : 'NO'} · max logit diff ${formatNumber(g.maxLogitDiff)}${tolerance}`;
  return `<h2 id="generation">Generation: ${g.pass ? 'pass' : 'FAIL'}</h2><p>${escapeHtml(head)}</p><p class="note">Token ids; tokens that differ from the reference are highlighted.</p>${table(['case', 'sequence', 'tokens', 'max logit diff', 'result'], rows, rowAttrs)}`;
}

function goldenSection(verdict: Verdict): string {
  const g = verdict.golden;
  if (!g) return '';
  const state = g.present ? (g.pass ? 'pass' : 'FAIL') : 'skipped: no golden for this backend yet';
  return `<h2 id="golden">Golden (${escapeHtml(g.backend)}): ${escapeHtml(state)}</h2><p class="note">${escapeHtml(g.file)}</p>${g.present ? metricsTable(g.metrics) : ''}`;
}

function environmentSection(verdict: Verdict): string {
  const e = verdict.environment;
  const rows: string[][] = [
    ['backend', escapeHtml(e.backend)],
    ...(e.adapter ? [['GPU adapter', escapeHtml(describeAdapterLine(e.adapter))]] : []),
    ...(e.goldenKey && e.goldenKey !== e.backend ? [['golden key', `<code>${escapeHtml(e.goldenKey)}</code>`]] : []),
    ['node', escapeHtml(e.node)],
    ['tfjs', escapeHtml(e.tfjs)],
    ['platform', escapeHtml(e.platform)],
    ['commit', escapeHtml(e.commit ?? 'unknown')],
    ['suite folder', escapeHtml(verdict.suiteDir)],
    ['started', escapeHtml(verdict.startedAt)],
    ['finished', escapeHtml(verdict.finishedAt)],
    ...Object.entries(e.suiteHashes)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([file, hash]) => [`sha256 <code>${escapeHtml(file)}</code>`, `<code>${escapeHtml(hash)}</code>`]),
  ];
  return `<h2 id="environment">Environment</h2>${table(['', ''], rows)}`;
}

export interface RunHtmlOptions {
  /** Relative URL of plotly.js from the report's folder. */
  plotlySrc: string;
}

export function renderRunHtml(run: RunReportInput, options: RunHtmlOptions): string {
  const { verdict } = run;
  const plots = runPlots(run);
  const body = [
    banner(verdict),
    '<main>',
    facts(verdict),
    checksSection(verdictChecks(verdict)),
    trainSection(run, plots),
    forwardSection(verdict, plots),
    generationSection(verdict),
    goldenSection(verdict),
    environmentSection(verdict),
    '</main>',
  ].join('\n');
  return renderPage({ title: `${verdict.pass ? 'PASS' : 'FAIL'} ${verdict.suite}: Parity report`, plotlySrc: options.plotlySrc, body, plots });
}
