/**
 * Learning-rate schedules with Megatron-LM's formulas (OptimizerParamScheduler, FORMATS.md §9).
 * Everything counts samples: N = samples consumed before the step, W warmup, D decay length.
 * A per-step schedule (HF Trainer, the HF fixtures) is the same thing with one sample per step.
 * Evaluated in float64, in the references' order of operations.
 */
export type DecayStyle = 'constant' | 'linear' | 'cosine' | 'inverse-square-root' | 'WSD';
export type WsdDecayStyle = 'linear' | 'cosine' | 'exponential' | 'minus_sqrt';

export interface LrSchedule {
  maxLr: number;
  minLr: number;
  /** Learning rate at N = 0 of the warmup (Megatron --lr-warmup-init; 0 before core_r0.8). */
  initLr: number;
  warmupSamples: number;
  decaySamples: number;
  style: DecayStyle;
  /** WSD only: length of the final decay phase in samples, and its shape. */
  wsdDecaySamples?: number;
  wsdStyle?: WsdDecayStyle;
  /** Samples consumed per optimizer step (global batch size; 1 for per-step schedules). */
  samplesPerStep: number;
}

/** Learning rate used by optimizer step `step` (0-based): N = step · samplesPerStep. */
export function lrAtStep(s: LrSchedule, step: number): number {
  return lrAtSamples(s, step * s.samplesPerStep);
}

export function lrAtSamples(s: LrSchedule, n: number): number {
  const W = s.warmupSamples;
  const D = s.decaySamples;
  if (W > 0 && n <= W) return s.initLr + ((s.maxLr - s.initLr) * n) / W;
  if (s.style === 'constant') return s.maxLr;
  if (n > D) return s.minLr;
  if (s.style === 'inverse-square-root') {
    return Math.max(s.minLr, (s.maxLr * Math.sqrt(Math.max(W, 1))) / Math.sqrt(Math.max(n, 1)));
  }
  const delta = s.maxLr - s.minLr;
  if (s.style === 'WSD') {
    const S = s.wsdDecaySamples ?? 0;
    if (n <= D - S) return s.maxLr;
    const sigma = (n - D + S) / S;
    return s.minLr + wsdCoefficient(s.wsdStyle ?? 'exponential', sigma) * delta;
  }
  const rho = (n - W) / (D - W);
  const coeff = s.style === 'linear' ? 1 - rho : 0.5 * (Math.cos(Math.PI * rho) + 1);
  return s.minLr + coeff * delta;
}

function wsdCoefficient(style: WsdDecayStyle, sigma: number): number {
  switch (style) {
    case 'linear':
      return 1 - sigma;
    case 'cosine':
      return 0.5 * (1 + Math.cos(Math.PI * sigma));
    case 'exponential':
      return 2 * 0.5 ** sigma - 1;
    case 'minus_sqrt':
      return 1 - Math.sqrt(sigma);
  }
}
