/**
 * Realistic porting bugs, injected into Parity's own replay (never into the reference) to prove
 * that a suite's curve gate catches them. Each is what a port gets wrong in practice:
 * TF/TF.js defaults, weight-decay groups, Keras-style per-tensor clipping, a scheduler stepped
 * before the optimizer, L2 regularisation in place of AdamW's decoupled decay, a parameter left
 * out of training.
 */
import type { TrainCheckOptions } from '../../src/align/train-check.ts';
import type { TrainSpec } from '../../src/align/train/hyperparams.ts';
import { lrAtStep } from '../../src/align/train/schedule.ts';

export interface PortingBug {
  name: string;
  what: string;
  replay: (spec: TrainSpec) => NonNullable<TrainCheckOptions['replay']>;
}

const f = Math.fround;

/** Each gradient clipped to the max norm on its own (Keras `clipnorm`), instead of the global norm. */
function clipEachTensor(maxNorm: number) {
  return (g: Float32Array) => {
    let squares = 0;
    for (let j = 0; j < g.length; j++) squares += g[j] * g[j];
    const coef = Math.min(1, maxNorm / (Math.sqrt(squares) + 1e-6));
    for (let j = 0; j < g.length; j++) g[j] = f(g[j] * coef);
  };
}

export const OPTIMIZER_BUGS: readonly PortingBug[] = [
  {
    name: 'adam-eps-1e-7',
    what: 'Adam epsilon 1e-7 (the TF / TF.js default) instead of 1e-8',
    replay: () => ({ spec: (s) => ({ ...s, optimizer: { ...s.optimizer, eps: 1e-7 } }) }),
  },
  {
    name: 'decay-on-bias-and-norm',
    what: 'weight decay applied to biases and norm weights too',
    replay: () => ({ spec: (s) => ({ ...s, noDecay: new Set() }) }),
  },
  {
    name: 'clip-per-tensor',
    what: 'each gradient clipped separately instead of by the global norm',
    replay: (spec) => ({ spec: (s) => ({ ...s, clip: null }), options: { editGradient: clipEachTensor(spec.clip!.maxNorm) } }),
  },
  {
    name: 'no-clipping',
    what: 'gradient clipping left out',
    replay: () => ({ spec: (s) => ({ ...s, clip: null }) }),
  },
  {
    name: 'lr-one-step-ahead',
    what: 'the LR scheduler stepped before the optimizer: lr(s + 1) applied at step s',
    replay: (spec) => ({ options: { lrAt: (step) => lrAtStep(spec.schedule, step + 1) } }),
  },
  {
    name: 'l2-instead-of-decoupled-decay',
    what: 'L2 regularisation added to the gradient instead of AdamW\'s decoupled weight decay',
    replay: (spec) => ({
      spec: (s) => ({ ...s, optimizer: { ...s.optimizer, weightDecay: 0 } }),
      options: {
        editGradient: (g, p) => {
          if (!p.decay) return;
          for (let j = 0; j < g.length; j++) g[j] = f(g[j] + f(spec.optimizer.weightDecay * p.value[j]));
        },
      },
    }),
  },
];

/** A parameter the port forgot to train (registered as a buffer, or left out of the optimizer). */
export function frozenBug(name: string, what: string, params: readonly string[]): PortingBug {
  return { name, what, replay: () => ({ options: { frozen: new Set(params) } }) };
}
