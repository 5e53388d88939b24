/**
 * Synthetic runs for the report tests: curves generated here (a decaying loss with deterministic
 * noise), verdicts built from them with the project's own curve comparator, so every number in a
 * report can be traced back to this file. `aligned: false` makes a run that is misaligned in every
 * section: the loss drifts off the reference from `driftFrom`, two forward tensors exceed their
 * tolerance, a generation diverges, the golden is missing.
 */
import { compareMetric } from '../../../src/align/compare-curve.ts';
import type { Curve } from '../../../src/align/curve.ts';
import type { RunReportInput } from '../../../src/align/report/html.ts';
import { findDivergence } from '../../../src/align/localize/walk.ts';
import type { CheckpointComparison, MetricComparison, TensorComparison, Verdict } from '../../../src/align/verdict.ts';

export interface SyntheticOptions {
  aligned: boolean;
  suite?: string;
  steps?: number;
  /** First step where the misaligned loss leaves the band. */
  driftFrom?: number;
  /** Names to put in the forward tensors (for escaping tests). */
  extraTensorName?: string;
  /** Add sub-block checkpoints to the forward section (the divergence walk). */
  checkpoints?: boolean;
}

export const LOSS_TOL = { policy: 'approximate' as const, atol: 1e-3, rtol: 1e-3, allowedFailingSteps: 0 };

/** A deterministic "noise" in [-1, 1): sin hashing, no RNG state to share between tests. */
function noise(i: number, salt: number): number {
  const x = Math.sin((i + 1) * 12.9898 + salt * 78.233) * 43758.5453;
  return 2 * (x - Math.floor(x)) - 1;
}

export function syntheticCurves(steps: number, aligned: boolean, driftFrom: number): { curve: Curve; referenceCurve: Curve } {
  const s = Array.from({ length: steps }, (_, i) => i);
  const refLoss = s.map((i) => 2 + 8 * Math.exp(-i / 60) + 0.05 * noise(i, 1));
  const lr = s.map((i) => (i < 10 ? (1e-3 * (i + 1)) / 10 : 1e-3));
  const grad = s.map((i) => 1 + 4 * Math.exp(-i / 40) + 0.1 * noise(i, 2));
  const mlm = refLoss.map((l) => l * 0.8);
  const nsp = refLoss.map((l) => l * 0.2);
  // Aligned: 1e-5 relative jitter, far inside atol 1e-3 + rtol 1e-3·|ref|; misaligned: a drift growing 0.02 per step.
  const ours = refLoss.map((l, i) => l * (1 + 1e-5 * noise(i, 3)) + (!aligned && i >= driftFrom ? 0.02 * (i - driftFrom + 1) : 0));
  const jitter = (v: number[], salt: number) => v.map((x, i) => x * (1 + 1e-6 * noise(i, salt)));
  return {
    referenceCurve: { steps: s, metrics: { loss: refLoss, lr, grad_norm: grad, mlm_loss: mlm, nsp_loss: nsp } },
    curve: { steps: s, metrics: { loss: ours, lr: [...lr], grad_norm: jitter(grad, 4), mlm_loss: jitter(mlm, 5), nsp_loss: jitter(nsp, 6) } },
  };
}

function tensors(aligned: boolean, extraName?: string): TensorComparison[] {
  const names = ['initial/embeddings', 'initial/hidden_states.1', 'initial/hidden_states.2', 'initial/hidden_states.3', 'initial/logits', 'final/hidden_states.1', 'final/logits'];
  if (extraName) names.push(extraName);
  return names.map((name, i) => {
    const broken = !aligned && (name === 'initial/hidden_states.2' || name === 'initial/logits');
    const maxAbsDiff = broken ? 3e-2 * (i + 1) : 1e-7 * (i + 1);
    return { name, shape: [2, 8, 32], maxAbsDiff, maxRelDiff: maxAbsDiff * 10, atol: 1e-5, rtol: 1e-4, pass: !broken, compared: 512 };
  });
}

/** Sub-block checkpoints against a stored reference, one matched by value; misaligned: layer.1's output fails. */
function checkpoints(aligned: boolean): CheckpointComparison[] {
  const rows: Array<[string, string, CheckpointComparison['match']]> = [
    ['initial/embeddings', 'embeddings', 'output'],
    ['initial/layer.0/attn.probs', 'attentions.0', 'output'],
    ['initial/layer.0/mlp_norm', 'hidden_states.1', 'output'],
    ['initial/layer.1/attn.probs', 'attentions.1', 'output'],
    ['initial/layer.1/mlp_norm', 'hidden_states.2', 'output'],
    ['initial/head.norm', '/cls/predictions/transform/LayerNorm/Add_1_output_0', 'value'],
    ['initial/logits', 'logits', 'output'],
  ];
  return rows.map(([name, reference, match], i) => {
    const broken = !aligned && i >= 4;
    const maxAbsDiff = broken ? 2e-2 * i : i === 0 ? 0 : 2e-7 * i;
    return { name, reference, match, note: match === 'value' ? 'by value: closest of 3 same-shape candidates' : `stored tensor ${reference}`, shape: [2, 8, 32], maxAbsDiff, maxRelDiff: maxAbsDiff * 10, cosine: broken ? 0.93 : 1, atol: 1e-5, rtol: 1e-4, pass: !broken, compared: 512 };
  });
}

export function syntheticRun(options: SyntheticOptions): RunReportInput {
  const { aligned, suite = aligned ? 'synthetic-pass' : 'synthetic-fail', steps = 200, driftFrom = 120 } = options;
  const { curve, referenceCurve } = syntheticCurves(steps, aligned, driftFrom);
  const metrics: MetricComparison[] = ['loss', 'lr', 'grad_norm', 'mlm_loss', 'nsp_loss'].map((m) => compareMetric(m, curve, referenceCurve, LOSS_TOL));
  const loss = metrics[0];
  const fwd = tensors(aligned, options.extraTensorName);
  const firstBad = fwd.find((t) => !t.pass);
  const walk = options.checkpoints ? checkpoints(aligned) : undefined;
  const divergence = walk ? findDivergence(walk) : undefined;
  const goodTokens = [464, 3290, 318, 257, 1332, 13, 198, 464];
  const badTokens = [464, 3290, 318, 257, 1332, 2061, 11, 290];
  const verdict: Verdict = {
    schema: 1,
    suite,
    model: 'bert',
    backend: 'wasm',
    pass: aligned && metrics.every((m) => m.pass),
    startedAt: '2026-01-02T03:04:05.000Z',
    finishedAt: '2026-01-02T03:06:05.500Z',
    suiteDir: `baselines/${suite}`,
    forward: {
      pass: !firstBad,
      atol: 1e-5,
      rtol: 1e-4,
      maxAbsDiff: Math.max(...fwd.map((t) => t.maxAbsDiff)),
      tensors: fwd,
      firstDivergence: divergence?.name ?? firstBad?.name ?? null,
      ...(walk ? { reference: { kind: 'stored' as const, files: [`baselines/${suite}/forward_initial.safetensors`] }, checkpoints: walk, divergence } : {}),
    },
    train: {
      pass: metrics.every((m) => m.pass),
      steps,
      maxAbsDiff: loss.maxAbsDiff,
      maxRelDiff: loss.maxRelDiff,
      failingSteps: loss.failingSteps,
      firstFailingStep: loss.firstFailingStep,
      msPerStep: 12.5,
      metrics,
    },
    generation: {
      pass: aligned,
      cachedEqualsUncached: true,
      tokensMatchReference: aligned,
      logitsWithinTolerance: aligned,
      matchesReference: aligned,
      maxLogitDiff: aligned ? 2e-5 : 0.4,
      cases: [
        { name: 'greedy-0', cached: goodTokens, uncached: goodTokens, reference: goodTokens, maxLogitDiff: 2e-5, pass: true },
        { name: 'greedy-1', cached: aligned ? goodTokens : badTokens, uncached: aligned ? goodTokens : badTokens, reference: goodTokens, maxLogitDiff: aligned ? 1e-5 : 0.4, pass: aligned },
      ],
    },
    golden: aligned
      ? { backend: 'wasm', file: `baselines/${suite}/golden.wasm.json`, present: true, pass: true, metrics: [compareMetric('loss', curve, curve, { policy: 'deterministic', atol: 0, rtol: 0, allowedFailingSteps: 0 })] }
      : { backend: 'wasm', file: `baselines/${suite}/golden.wasm.json`, present: false, pass: false, metrics: [] },
    environment: {
      backend: 'wasm',
      node: 'v20.20.2',
      tfjs: '4.22.0',
      platform: 'linux-x64',
      commit: 'a5bfd5b',
      suiteHashes: { 'train_curve.json': 'ab'.repeat(32), 'model.safetensors': 'cd'.repeat(32) },
    },
  };
  return { verdict, curve, referenceCurve };
}
