/**
 * A verdict flattened into checks: one row per thing that can pass or fail on its own (a forward
 * tensor, a train metric, a generation case, a golden metric), each carrying the numbers that
 * decided it. JUnit (one testcase per check), Markdown and the HTML checks table all read this
 * list, so the three reports can never disagree about what failed or by how much.
 *
 * Numbers that were Infinity or NaN in memory come back as `null` from `verdict.json` (JSON has no
 * Infinity); they are printed as "non-finite", never as 0 or blank, because a missing step is
 * exactly such a number and must not read as a pass.
 */
import type { ForwardVerdict, MetricComparison, TensorComparison, Verdict } from '../verdict.ts';

export type CheckSection = 'forward' | 'train' | 'generation' | 'golden' | 'verdict';

/**
 * `skipped`: nothing to compare against yet (no golden for this backend). The runner does not fail
 * a verdict for it, and the reports show it as skipped, never as a pass.
 */
export type CheckStatus = 'pass' | 'fail' | 'skipped';

export interface Check {
  section: CheckSection;
  /** Unique within its section: "initial/hidden_states.1", "loss", "greedy-0". */
  name: string;
  status: CheckStatus;
  /** Largest |ours − reference|; undefined when the check is not a numeric comparison. */
  maxAbsDiff?: number | null;
  /** The rule the numbers were held to, in words: "atol 1e-5 + rtol 1e-4·|ref|", "exact". */
  tolerance: string;
  /** What failed (or why skipped) and where: "3 of 1000 steps (0 allowed), first at step 17"; "" for a pass. */
  failing: string;
  /** One line with every number, used as the JUnit failure message and the Markdown detail. */
  message: string;
}

/** Formats a verdict number for people; `null` is what a non-finite number becomes in JSON. */
export function formatNumber(x: number | null | undefined): string {
  if (x === undefined) return '—';
  if (x === null) return 'non-finite';
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return '∞';
  if (x === Number.NEGATIVE_INFINITY) return '-∞';
  if (x === 0) return '0';
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const abs = Math.abs(x);
  // Tolerances and diffs span 1e-12..1e2: exponent form keeps small ones readable and comparable.
  if (abs < 1e-3 || abs >= 1e5) return x.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(x.toPrecision(4)));
}

export function formatTolerance(atol: number, rtol: number, policy?: MetricComparison['policy']): string {
  if (policy === 'deterministic') return 'exact (deterministic)';
  return `atol ${formatNumber(atol)} + rtol ${formatNumber(rtol)}·|ref|`;
}

/** A metric's tolerance in words: the plain rule, or the envelope with its source and its widest value. */
export function describeMetricTolerance(m: MetricComparison): string {
  const plain = formatTolerance(m.atol, m.rtol, m.policy);
  const e = m.envelope;
  if (!e) return plain;
  const widest = e.tolerance.length ? Math.max(...e.tolerance) : Number.NaN;
  const fromNoise = e.bounds.find((b) => b.by === 'noise');
  const which = !fromNoise ? 'the floor throughout' : fromNoise === e.bounds[0] ? 'the noise from the first step' : `the floor until step ${fromNoise.fromStep}, then the noise`;
  return `max(${plain}, ${formatNumber(e.k)} × noise of ${e.source}): ${which}; widest ${formatNumber(widest)}`;
}

/** A tensor's tolerance in words, with the float64 envelope when one applied. */
export function describeTensorTolerance(t: TensorComparison): string {
  const plain = formatTolerance(t.atol, t.rtol);
  const e = t.envelope;
  if (!e) return plain;
  return `max(${plain}, ${formatNumber(e.k)} × row noise of ${e.source}): widened ${e.widenedElements} element(s), widest ${formatNumber(e.maxTolerance)}`;
}

/** The tolerance at reference step index i of a metric comparison (the band reports draw). */
export function toleranceAtIndex(m: MetricComparison, i: number, ref: number): number {
  if (m.policy === 'deterministic') return 0;
  return m.envelope ? (m.envelope.tolerance[i] ?? Number.NaN) : m.atol + m.rtol * Math.abs(ref);
}

/**
 * The forward tensor to mark as where divergence starts: the one firstDivergence names, or, when
 * that names a sub-block checkpoint, the stored tensor that checkpoint was compared with.
 */
export function divergentTensor(f: ForwardVerdict): string | null {
  if (f.tensors.some((t) => t.name === f.firstDivergence)) return f.firstDivergence;
  const d = f.divergence;
  const stored = d ? `${d.run}/${d.reference}` : null;
  return stored && f.tensors.some((t) => t.name === stored) ? stored : null;
}

/** One check for the sub-block walk: it fails with the first divergence named. */
function checkpointsCheck(f: ForwardVerdict): Check | undefined {
  const cps = f.checkpoints;
  if (!cps || cps.length === 0) return undefined;
  const trusted = cps.filter((c) => c.match !== 'value');
  const failing = trusted.filter((c) => !c.pass);
  const d = f.divergence;
  const where = d ? `first divergence ${d.name} (max|diff| ${formatNumber(d.maxAbsDiff)}, cosine ${d.cosine.toFixed(6)}, vs ${d.reference} by ${d.match}${d.lastPassing ? `, after ${d.lastPassing}` : ''})` : 'none diverge';
  return {
    section: 'forward',
    name: 'sub-block checkpoints',
    status: failing.length === 0 ? 'pass' : 'fail',
    maxAbsDiff: trusted.reduce((m, c) => Math.max(m, c.maxAbsDiff), 0),
    tolerance: formatTolerance(f.atol, f.rtol),
    failing: failing.length === 0 ? '' : `${failing.length} of ${trusted.length} over tolerance; ${where}`,
    message: `${cps.length} checkpoints (${cps.length - trusted.length} matched by value, not gating); ${where}`,
  };
}

function tensorCheck(t: TensorComparison, firstDivergence: string | null): Check {
  const tolerance = describeTensorTolerance(t);
  const first = t.name === firstDivergence ? '; first divergent tensor' : '';
  return {
    section: 'forward',
    name: t.name,
    status: t.pass ? 'pass' : 'fail',
    maxAbsDiff: t.maxAbsDiff,
    tolerance,
    failing: t.pass ? '' : `exceeds tolerance${first}`,
    message:
      `${t.name} [${t.shape.join(',')}]: max|diff| ${formatNumber(t.maxAbsDiff)}, max rel ${formatNumber(t.maxRelDiff)} ` +
      `over ${t.compared} elements; tolerance ${tolerance}${first}`,
  };
}

function metricCheck(section: 'train' | 'golden', m: MetricComparison): Check {
  const tolerance = describeMetricTolerance(m);
  const first = m.firstFailingStep === null ? '' : `, first at step ${m.firstFailingStep}`;
  const failing = m.failingSteps > 0 ? `${m.failingSteps} of ${m.steps} steps (${m.allowedFailingSteps} allowed)${first}` : '';
  const at = m.maxAbsDiffStep === null ? '' : ` at step ${m.maxAbsDiffStep}`;
  return {
    section,
    name: m.metric,
    status: m.pass ? 'pass' : 'fail',
    maxAbsDiff: m.maxAbsDiff,
    tolerance,
    failing: m.pass ? '' : failing || `no comparable steps (${m.steps} reference steps)`,
    message:
      `${m.metric}: max|diff| ${formatNumber(m.maxAbsDiff)}${at}, max rel ${formatNumber(m.maxRelDiff)}; ` +
      `tolerance ${tolerance}; failing steps ${m.failingSteps}/${m.steps} (${m.allowedFailingSteps} allowed); ` +
      `first failing step ${m.firstFailingStep ?? 'none'}${m.hint ? `; ${m.hint}` : ''}`,
  };
}

/** Index of the first token where `a` and `b` differ (a length difference counts), or -1. */
export function firstMismatch(a: readonly number[], b: readonly number[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * A section whose own `pass` is false must show at least one failing check, even when every item
 * in it passed (no tensors compared, an inconsistent writer): otherwise JUnit would be green.
 */
function withOverall(section: CheckSection, pass: boolean, items: Check[], why: string): Check[] {
  if (pass || items.some((c) => c.status === 'fail')) return items;
  return [...items, { section, name: `${section} (overall)`, status: 'fail', tolerance: '—', failing: why, message: why }];
}

export function verdictChecks(verdict: Verdict): Check[] {
  const checks: Check[] = [];
  const { forward, train, generation, golden } = verdict;

  if (forward) {
    const divergent = divergentTensor(forward);
    const items = forward.tensors.map((t) => tensorCheck(t, divergent));
    const walk = checkpointsCheck(forward);
    if (walk) items.push(walk);
    const why = forward.tensors.length === 0 ? 'no forward tensors were compared' : 'forward failed although every tensor passed';
    checks.push(...withOverall('forward', forward.pass, items, why));
  }

  if (train) {
    const items = train.metrics.map((m) => metricCheck('train', m));
    if (train.stoppedAt) {
      const why = `training stopped early at step ${train.stoppedAt.step}: ${train.stoppedAt.reason}`;
      items.push({ section: 'train', name: 'completed', status: 'fail', tolerance: `${train.steps} steps`, failing: why, message: why });
    }
    checks.push(...withOverall('train', train.pass, items, `train failed (${train.failingSteps} failing loss steps)`));
  }

  if (generation) {
    const items = generation.cases.map((c): Check => {
      const vsRef = firstMismatch(c.cached, c.reference);
      const vsUncached = firstMismatch(c.cached, c.uncached);
      const parts = [
        vsUncached < 0 ? 'cached = uncached' : `cached ≠ uncached from token ${vsUncached}`,
        vsRef < 0 ? 'cached = reference' : `cached ≠ reference from token ${vsRef}`,
        `max logit diff ${formatNumber(c.maxLogitDiff)}`,
      ];
      return {
        section: 'generation',
        name: c.name,
        status: c.pass ? 'pass' : 'fail',
        maxAbsDiff: c.maxLogitDiff,
        tolerance: 'tokens exact',
        failing: c.pass ? '' : parts.filter((p) => p.includes('≠')).join('; ') || 'logits out of tolerance',
        message: `${c.name}: ${parts.join('; ')} (${c.reference.length} reference tokens)`,
      };
    });
    const why = generation.cases.length === 0 ? 'no generation cases were compared' : 'generation failed although every case passed';
    checks.push(...withOverall('generation', generation.pass, items, why));
  }

  if (golden) {
    if (!golden.present) {
      const why = `no golden for backend ${golden.backend} (${golden.file}); bless one to start regression checks`;
      checks.push({ section: 'golden', name: golden.backend, status: 'skipped', tolerance: 'exact', failing: why, message: why });
    } else {
      const items = golden.metrics.map((m) => metricCheck('golden', m));
      checks.push(...withOverall('golden', golden.pass, items, `golden ${golden.file} failed`));
    }
  }

  // The verdict is the contract; a failed verdict with no failing check (or no checks at all)
  // still has to fail in JUnit and read as failed in every summary.
  if (checks.length === 0 || (!verdict.pass && checks.every((c) => c.status !== 'fail'))) {
    const why = checks.length === 0 ? 'the run compared nothing' : 'verdict.pass is false but no single check failed';
    checks.push({ section: 'verdict', name: 'verdict', status: verdict.pass ? 'pass' : 'fail', tolerance: '—', failing: verdict.pass ? '' : why, message: why });
  }
  return checks;
}
