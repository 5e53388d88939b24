/**
 * Every default tolerance of a suite, in one place. A suite's `manifest.json` overrides any of
 * them; a folder without a manifest (a user folder shaped like a fixture) gets exactly these.
 * The shipped manifests do not repeat them, so tuning a number here tunes every shipped suite.
 */
import { DETERMINISTIC, type CurveTolerance } from '../compare-curve.ts';

/**
 * Forward tensors on initial/final weights: float32 kernels against PyTorch's float32 CPU run,
 * |ours − ref| ≤ atol + rtol·|ref|. A suite can loosen single tensors (manifest
 * `tolerances.forward.tensors`) where the reference's own float32 rounding exceeds this.
 */
export const FORWARD_ATOL = 1e-5;
export const FORWARD_RTOL = 0;

/**
 * With the reference's float64 forward record: widen each row's tolerance to k × the reference's
 * own error in that row. Measured on the shipped suites: our worst row is 2.9× the reference's
 * (t5's final logits), so k = 10 as for curves.
 */
export const FORWARD_ENVELOPE = { k: 10 };

/**
 * How far a correct float32 port may be from the reference, relative to the reference's own
 * measured precision (|ref32 − ref64| from train_curve.float64.json, or our one-ulp calibration):
 * measured on the shipped suites over 1000 steps, our wasm replay stays within 4.3× the running
 * maximum of that precision (gpt2's loss at step 31; 3.7× for t5's grad norm at step 107), so 10×
 * leaves room while keeping the early-step gate at the floor.
 */
export const ENVELOPE_K = 10;

/**
 * The total loss and every loss part (`*_loss`). Without a measured noise: 1000 float32 steps
 * drift, but not by 1e-3 nats. With one: a floor of 1e-5 — early steps of a correct port agree to
 * ~1e-6 — widened to 10× the noise where training makes the reference itself imprecise.
 */
export const LOSS_TOLERANCE: CurveTolerance = { policy: 'approximate', atol: 1e-3, rtol: 0, allowedFailingSteps: 0, envelope: { k: ENVELOPE_K, atol: 1e-5, rtol: 0 } };

/**
 * Pre-clip global norm: a sum of squares over every gradient, so it carries the most rounding.
 * With a measured noise, the floor is relative too (norms reach 15 at gradient spikes).
 */
export const GRAD_NORM_TOLERANCE: CurveTolerance = { policy: 'approximate', atol: 1e-2, rtol: 1e-2, allowedFailingSteps: 0, envelope: { k: ENVELOPE_K, atol: 1e-5, rtol: 1e-5 } };

/**
 * The LR is schedule arithmetic, not training: it must match to double rounding. rtol alone would
 * make lr(0) = 0 compare only against an exact 0; atol 1e-15 keeps that equal without letting a
 * real schedule difference (≥ 1e-8 at any step of the shipped schedules) through.
 */
export const LR_TOLERANCE: CurveTolerance = { policy: 'approximate', atol: 1e-15, rtol: 1e-9, allowedFailingSteps: 0 };

/**
 * Megatron's count of exactly-zero gradient elements after clipping. Beyond the structural zeros it
 * counts elements that are mathematically 0 but numerically ~1e-11 (attention key-bias gradients),
 * so it depends on rounding: Megatron's own CI compares it at rtol 0.2.
 */
export const NUM_ZEROS_TOLERANCE: CurveTolerance = { policy: 'approximate', atol: 0, rtol: 0.2, allowedFailingSteps: 0 };

/** Our own per-backend goldens: same code, same backend, so every bit must match. */
export const GOLDEN_TOLERANCE: CurveTolerance = DETERMINISTIC;

/** Greedy generation: step logits against the reference's, with the forward's tolerance (same outputs). */
export const GENERATION_LOGIT_ATOL = FORWARD_ATOL;
export const GENERATION_LOGIT_RTOL = FORWARD_RTOL;

/** Curve tolerances by our metric name. Loss parts not listed here use `loss`'s (see `curveToleranceFor`). */
export const DEFAULT_CURVE_TOLERANCES: Readonly<Record<string, CurveTolerance>> = {
  loss: LOSS_TOLERANCE,
  grad_norm: GRAD_NORM_TOLERANCE,
  lr: LR_TOLERANCE,
  num_zeros: NUM_ZEROS_TOLERANCE,
};

/**
 * Megatron golden values are TensorBoard scalars rounded to 5 decimals: an imported golden can be
 * 5e-6 away from the exact value, so comparisons against it add this to the curve atol.
 */
export const MEGATRON_GOLDEN_ROUNDING_ATOL = 5e-6;

/** HF Trainer logs `round(mean loss, 4)`. */
export const HF_LOSS_ROUNDING_ATOL = 5e-5;
