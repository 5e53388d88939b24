import { describe, expect, it } from 'vitest';
import { renderRunHtml, runPlots, valuesAtSteps } from '../../../src/align/report/html.ts';
import { escapeHtml } from '../../../src/align/report/page.ts';
import { LOSS_TOL, syntheticRun } from './synthetic.ts';

interface Spec {
  id: string;
  traces: Array<{ name?: string; x: unknown[]; y: Array<number | null>; marker?: { symbol?: unknown } }>;
  layout?: { yaxis?: { type?: string } };
}

/** The plot specs as the page's script will read them. */
function specsOf(html: string): Spec[] {
  const m = /<script type="application\/json" id="plot-specs">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no plot-specs script in the page');
  return JSON.parse(m[1]) as Spec[];
}

function plotDivs(html: string): Map<string, number> {
  return new Map([...html.matchAll(/<div class="plot" id="([^"]+)" data-traces="(\d+)">/g)].map((m) => [m[1], Number(m[2])]));
}

const render = (run = syntheticRun({ aligned: true })) => renderRunHtml(run, { plotlySrc: 'plotly.js' });

describe('renderRunHtml', () => {
  it.each([
    [true, 'pass'],
    [false, 'fail'],
  ])('banner agrees with verdict.pass=%s', (aligned, expected) => {
    const html = render(syntheticRun({ aligned }));
    expect(html).toMatch(new RegExp(`<header id="verdict-banner" class="banner ${expected}" data-verdict="${expected}">`));
    expect(html.match(/data-verdict=/g)).toHaveLength(1);
  });

  it('follows verdict.pass even when every section passed', () => {
    const run = syntheticRun({ aligned: true });
    run.verdict.pass = false;
    expect(render(run)).toContain('data-verdict="fail"');
  });

  it('loads plotly from the given relative src', () => {
    expect(renderRunHtml(syntheticRun({ aligned: true }), { plotlySrc: '../../plotly.js' })).toContain('<script src="../../plotly.js"></script>');
  });

  it.each([
    [true, { 'plot-loss': 4, 'plot-loss-diff': 2, 'plot-grad-norm': 2, 'plot-lr': 2, 'plot-part-mlm_loss': 2, 'plot-part-nsp_loss': 2, 'plot-forward': 2 }],
    // Failing: the loss plot adds the failing-steps marks, the forward plot the first-divergence star.
    [false, { 'plot-loss': 5, 'plot-loss-diff': 2, 'plot-grad-norm': 2, 'plot-lr': 2, 'plot-part-mlm_loss': 2, 'plot-part-nsp_loss': 2, 'plot-forward': 3 }],
  ])('aligned=%s: one div per plot spec, declaring its trace count', (aligned, expected) => {
    const html = render(syntheticRun({ aligned }));
    const divs = plotDivs(html);
    const specs = specsOf(html);
    expect(Object.fromEntries(divs)).toEqual(expected);
    expect(Object.fromEntries(specs.map((s) => [s.id, s.traces.length]))).toEqual(expected);
  });

  it('draws the tolerance band as atol + rtol·|ref| around the reference loss', () => {
    const run = syntheticRun({ aligned: true });
    const loss = specsOf(render(run)).find((s) => s.id === 'plot-loss')!;
    const [lower, upper, reference] = loss.traces;
    const ref = run.referenceCurve!.metrics.loss;
    for (const i of [0, 57, 199]) {
      const tol = LOSS_TOL.atol + LOSS_TOL.rtol * Math.abs(ref[i]);
      expect(reference.y[i]).toBe(ref[i]);
      expect(upper.y[i]! - ref[i]).toBeCloseTo(tol, 12);
      expect(ref[i] - lower.y[i]!).toBeCloseTo(tol, 12);
    }
  });

  it('draws an envelope as the band: the verdict\'s tolerance at each step, named with its source', () => {
    const run = syntheticRun({ aligned: true });
    const loss = run.verdict.train!.metrics.find((m) => m.metric === 'loss')!;
    const tolerance = run.referenceCurve!.steps.map((s) => (s < 100 ? 1e-5 : 1e-5 * (s - 90)));
    loss.envelope = { source: 'train_curve.float64.json (loss)', k: 10, atol: 1e-5, rtol: 0, tolerance, bounds: [{ fromStep: 0, by: 'floor' }, { fromStep: 100, by: 'noise' }] };
    const html = render(run);
    const [lower, upper] = specsOf(html).find((s) => s.id === 'plot-loss')!.traces;
    const ref = run.referenceCurve!.metrics.loss;
    for (const i of [0, 99, 150, 199]) {
      expect(upper.y[i]! - ref[i]).toBeCloseTo(tolerance[i], 12);
      expect(ref[i] - lower.y[i]!).toBeCloseTo(tolerance[i], 12);
    }
    expect(upper.name).toMatch(/10 × noise of train_curve\.float64\.json \(loss\)/);
    expect(html).toContain('the floor until step 100, then the noise');
  });

  it('marks exactly the failing steps the verdict counted', () => {
    const run = syntheticRun({ aligned: false, driftFrom: 150 });
    const loss = run.verdict.train!.metrics.find((m) => m.metric === 'loss')!;
    const marks = specsOf(render(run)).find((s) => s.id === 'plot-loss')!.traces[4];
    expect(loss.failingSteps).toBe(50);
    expect(marks.x).toHaveLength(loss.failingSteps);
    expect(marks.x[0]).toBe(loss.firstFailingStep);
    expect(marks.x[0]).toBe(150);
  });

  it('plots |diff| on a log axis with exact zeros as gaps, not as 0', () => {
    const run = syntheticRun({ aligned: true });
    run.curve!.metrics.loss[3] = run.referenceCurve!.metrics.loss[3];
    const diff = specsOf(render(run)).find((s) => s.id === 'plot-loss-diff')!;
    expect(diff.traces[0].y[3]).toBeNull();
    expect(diff.traces[0].y[4]).toBeGreaterThan(0);
  });

  it('marks the first divergent tensor in the forward plot and table', () => {
    const html = render(syntheticRun({ aligned: false }));
    const fwd = specsOf(html).find((s) => s.id === 'plot-forward')!;
    expect(fwd.traces[2].x).toEqual(['initial/hidden_states.2']);
    expect(html).toContain('<tr class="fail first-divergence"><td><code>initial/hidden_states.2</code>');
  });

  it('draws the sub-block checkpoints in model order on a log axis, starring the first divergence and opening value guesses', () => {
    const run = syntheticRun({ aligned: false, checkpoints: true });
    const html = render(run);
    const plot = specsOf(html).find((s) => s.id === 'plot-checkpoints')!;
    const [errors, tolerance, star] = plot.traces;
    expect(errors.x).toEqual(run.verdict.forward!.checkpoints!.map((c) => c.name));
    // An exact zero cannot sit on a log axis: a gap, not a 0.
    expect((errors.y as unknown[])[0]).toBeNull();
    expect((errors.marker!.symbol as string[])[5]).toBe('diamond-open');
    expect(tolerance.y).toEqual(Array(7).fill(1e-5));
    expect(star.x).toEqual(['initial/layer.1/mlp_norm']);
    expect(plot.layout?.yaxis?.type).toBe('log');
    expect(html).toContain('sub-block <code>mlp_norm</code>');
    expect(html).toContain('last passing: <code>initial/layer.1/attn.probs</code>');
    expect(html).toContain('<tr class="fail first-divergence"><td><code>initial/layer.1/mlp_norm</code>');
    expect(html).toContain('<tr class="fail first-divergence"><td><code>initial/hidden_states.2</code>');
    expect(render(syntheticRun({ aligned: true, checkpoints: true }))).toContain('Every checkpoint is within tolerance.');
    expect(render(syntheticRun({ aligned: true }))).not.toContain('plot-checkpoints');
  });

  it('highlights generated tokens that differ from the reference', () => {
    const html = render(syntheticRun({ aligned: false }));
    // greedy-1 diverges at token 5 (2061 instead of 13) in both cached and uncached rows.
    expect(html.match(/<span class="mismatch">2061<\/span>/g)).toHaveLength(2);
    expect(render(syntheticRun({ aligned: true }))).not.toContain('class="mismatch"');
  });

  it('shows environment and suite file hashes', () => {
    const html = render();
    expect(html).toContain('<code>' + 'ab'.repeat(32) + '</code>');
    expect(html).toContain('<td>commit</td><td>a5bfd5b</td>');
    expect(html).toContain('<td>tfjs</td><td>4.22.0</td>');
  });

  it('escapes every name, including in the embedded plot data', () => {
    const evil = 'initial/</script><script>window.__pwned=1</script>&"\'';
    const run = syntheticRun({ aligned: true, suite: '<b>suite</b>', extraTensorName: evil });
    const html = render(run);
    expect(html).not.toContain('<script>window.__pwned');
    expect(html).not.toContain('<b>suite</b>');
    expect(html).toContain('&lt;b&gt;suite&lt;/b&gt;');
    // The spec JSON still parses and still carries the name intact.
    expect(specsOf(html).find((s) => s.id === 'plot-forward')!.traces[0].x).toContain(evil);
  });

  it('renders a forward-only run without training plots', () => {
    const { verdict } = syntheticRun({ aligned: true });
    delete verdict.train;
    const html = render({ verdict });
    expect([...plotDivs(html).keys()]).toEqual(['plot-forward']);
    expect(specsOf(html).map((s) => s.id)).toEqual(['plot-forward']);
    expect(html).not.toContain('id="train"');
  });

  it('says which curve files are missing when the verdict trained but curves are absent', () => {
    const { verdict } = syntheticRun({ aligned: true });
    const html = render({ verdict });
    expect(html).toContain('Curves missing from the run folder (curve.json, reference-curve.json)');
    expect(html).toContain('<h3>Per-metric comparison</h3>');
  });

  it('prints non-finite numbers from verdict.json as such, never as blank or 0', () => {
    const run = syntheticRun({ aligned: false });
    // What JSON.stringify makes of Infinity (a step we never produced).
    (run.verdict.train!.metrics[0] as { maxAbsDiff: number | null }).maxAbsDiff = null;
    expect(render(run)).toMatch(/<td><code>loss<\/code><\/td><td>approximate<\/td>(<td>[^<]*<\/td>){2}<td>non-finite<\/td>/);
  });
});

describe('valuesAtSteps', () => {
  it('looks values up by step number and leaves missing or non-finite ones empty', () => {
    const curve = { steps: [0, 2, 3], metrics: { loss: [1, Number.NaN, 3] } };
    expect(valuesAtSteps(curve, 'loss', [0, 1, 2, 3])).toEqual([1, null, null, 3]);
    expect(valuesAtSteps(curve, 'lr', [0])).toEqual([null]);
  });
});

describe('runPlots', () => {
  it('draws no band without a loss comparison', () => {
    const run = syntheticRun({ aligned: true });
    run.verdict.train!.metrics = run.verdict.train!.metrics.filter((m) => m.metric !== 'loss');
    expect(runPlots(run).find((p) => p.id === 'plot-loss')!.traces.map((t) => t.name)).toEqual(['reference', 'ours']);
  });
});

describe('escapeHtml', () => {
  it('escapes the five HTML-special characters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
