/**
 * AdamW and global-norm clipping on host copies of the parameters, emulating float32 arithmetic
 * exactly (every intermediate rounded with Math.fround, in the reference's order of operations).
 * Running the update on the host keeps it identical on every backend, so a curve difference
 * points at the model, never at the optimizer. Two update rules are known:
 *  - torch-adamw: torch.optim.AdamW (torch 1.13, single-tensor path), what HF fixtures use;
 *  - apex-adamw: apex FusedAdam(adam_w_mode=True), Megatron-LM's optimizer.
 */
const f = Math.fround;

export type AdamRule = 'torch-adamw' | 'apex-adamw';
export type ClipRule = 'torch' | 'megatron';

export interface AdamWConfig {
  rule: AdamRule;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface ParamState {
  name: string;
  value: Float32Array;
  m: Float32Array;
  v: Float32Array;
  decay: boolean;
}

/** Adam's step counter t (1 on the first update); shared by all parameters, as in both references. */
export class AdamW {
  private t = 0;
  constructor(readonly config: AdamWConfig) {}

  get stepCount(): number {
    return this.t;
  }

  step(params: readonly ParamState[], grads: readonly Float32Array[], lr: number): void {
    this.beginStep();
    for (let i = 0; i < params.length; i++) this.update(params[i], grads[i], lr);
  }

  /** Advances t: once per optimizer step, before `update` on each parameter. */
  beginStep(): void {
    this.t++;
  }

  /** One parameter's update at the current t (the streaming loop updates one tensor at a time). */
  update(p: ParamState, g: Float32Array, lr: number): void {
    if (this.config.rule === 'torch-adamw') this.torchUpdate(p, g, lr);
    else this.apexUpdate(p, g, lr);
  }

  /**
   * torch 1.13 `_single_tensor_adamw`: python-float scalars are computed in double and rounded to
   * float32 where they meet a float32 tensor.
   *   p *= 1 − lr·wd;  m = m·β1 + (1−β1)·g;  v = v·β2 + ((1−β2)·g)·g
   *   denom = sqrt(v) / sqrt(1−β2^t) + eps;  p += (−lr/(1−β1^t))·m / denom
   */
  private torchUpdate(p: ParamState, g: Float32Array, lr: number): void {
    const { beta1, beta2, eps } = this.config;
    const wd = p.decay ? this.config.weightDecay : 0;
    const decayFactor = f(1 - lr * wd);
    const b1 = f(beta1);
    const oneMinusB1 = f(1 - beta1);
    const b2 = f(beta2);
    const oneMinusB2 = f(1 - beta2);
    const bc1 = 1 - beta1 ** this.t;
    const bc2Sqrt = f(Math.sqrt(1 - beta2 ** this.t));
    const stepSize = f(-(lr / bc1));
    const epsF = f(eps);
    const { value, m, v } = p;
    for (let j = 0; j < value.length; j++) {
      const gj = g[j];
      const pj = f(value[j] * decayFactor);
      const mj = f(f(m[j] * b1) + f(oneMinusB1 * gj));
      const vj = f(f(v[j] * b2) + f(f(oneMinusB2 * gj) * gj));
      const denom = f(f(f(Math.sqrt(vj)) / bc2Sqrt) + epsF);
      value[j] = f(pj + f(f(stepSize * mj) / denom));
      m[j] = mj;
      v[j] = vj;
    }
  }

  /**
   * apex FusedAdam, adam_w_mode, everything float32:
   *   m = β1·m + (1−β1)·g;  v = β2·v + ((1−β2)·g)·g
   *   update = (m/bc1) / (sqrt(v/bc2) + eps) + wd·p;  p = p − lr·update
   * with bc = float32(1 − float64(β)^t).
   */
  private apexUpdate(p: ParamState, g: Float32Array, lr: number): void {
    const b1 = f(this.config.beta1);
    const b2 = f(this.config.beta2);
    const oneMinusB1 = f(1 - b1);
    const oneMinusB2 = f(1 - b2);
    const bc1 = f(1 - b1 ** this.t);
    const bc2 = f(1 - b2 ** this.t);
    const epsF = f(this.config.eps);
    const wd = p.decay ? f(this.config.weightDecay) : 0;
    const lrF = f(lr);
    const { value, m, v } = p;
    for (let j = 0; j < value.length; j++) {
      const gj = g[j];
      const mj = f(f(b1 * m[j]) + f(oneMinusB1 * gj));
      const vj = f(f(b2 * v[j]) + f(f(oneMinusB2 * gj) * gj));
      const update = f(f(f(mj / bc1) / f(f(Math.sqrt(f(vj / bc2))) + epsF)) + f(wd * value[j]));
      value[j] = f(value[j] - f(lrF * update));
      m[j] = mj;
      v[j] = vj;
    }
  }
}

/**
 * The global L2 norm of all gradients before clipping, and clipping in place.
 *  - torch (clip_grad_norm_): norm of the per-parameter float32 norms; g *= min(1, max/(norm + 1e-6)), always applied.
 *  - megatron: norm accumulated in float64; g *= max/(norm + 1e-6) only when that is < 1.
 * Returns the pre-clip norm, as both references log it. The loop uses the three parts below on
 * one tensor at a time; this is their composition.
 */
export function clipGradients(grads: readonly Float32Array[], maxNorm: number, rule: ClipRule): number {
  const norm = globalNorm(grads.map(sumSquares), rule);
  const coef = clipScale(norm, maxNorm, rule);
  if (coef !== 1) for (const g of grads) scaleInPlace(g, coef);
  return norm;
}

/** The global norm from each tensor's sum of squares, combined as the rule's reference does. */
export function globalNorm(sumsOfSquares: readonly number[], rule: ClipRule): number {
  if (rule === 'megatron') return Math.sqrt(sumsOfSquares.reduce((a, b) => a + b, 0));
  let sumOfSquaredNorms = 0;
  for (const s of sumsOfSquares) {
    const n = f(Math.sqrt(s));
    sumOfSquaredNorms += n * n;
  }
  return f(Math.sqrt(sumOfSquaredNorms));
}

/** The factor clipping multiplies every gradient by (1: left alone). */
export function clipScale(norm: number, maxNorm: number, rule: ClipRule): number {
  if (rule === 'torch') return Math.min(1, f(f(maxNorm) / f(norm + f(1e-6))));
  const coef = f(maxNorm / (norm + 1e-6));
  return coef < 1 ? coef : 1;
}

export function scaleInPlace(g: Float32Array, coef: number): void {
  for (let j = 0; j < g.length; j++) g[j] = f(g[j] * coef);
}

export function sumSquares(g: Float32Array): number {
  let s = 0;
  for (let j = 0; j < g.length; j++) s += g[j] * g[j];
  return s;
}
