/**
 * The verdict: the JSON contract written once per align run (`verdict.json`) and read by reports,
 * baselines, the nightly dashboard and CI. Field names in the issue contract are kept as they are;
 * additions only extend.
 */

export type Weights = 'initial' | 'final';

export interface TensorComparison {
  /** Reference tensor name, prefixed by the weights it was computed on: "initial/hidden_states.1". */
  name: string;
  shape: number[];
  maxAbsDiff: number;
  maxRelDiff: number;
  atol: number;
  rtol: number;
  pass: boolean;
  /** Elements compared (padded positions excluded where the reference says they are undefined). */
  compared: number;
  /**
   * Present when the reference's float64 record set the tolerance: per element
   * max(atol + rtol·|ref|, k · noise of its row); how many elements it widened and the widest.
   */
  envelope?: { source: string; k: number; maxTolerance: number; widenedElements: number };
}

export interface ForwardVerdict {
  pass: boolean;
  atol: number;
  rtol: number;
  maxAbsDiff: number;
  tensors: TensorComparison[];
  /**
   * Where the forward first goes wrong, in model order: the first failing sub-block checkpoint
   * ("initial/layer.1/mlp.act", "initial/encoder/position_bias") when the reference locates one,
   * else the first failing layer output ("initial/hidden_states.2"); null when all pass.
   */
  firstDivergence: string | null;
  /** Where the reference values came from. Absent in verdicts written before live references. */
  reference?: ForwardReference;
  /** Our sub-block taps against their reference values, in model order, runs in order. */
  checkpoints?: CheckpointComparison[];
  /** The first checkpoint over tolerance, split into its parts; null when every checkpoint passes. */
  divergence?: Divergence | null;
}

export interface ForwardReference {
  /** stored: tensors saved by the reference framework; onnx: graphs run live by onnxruntime. */
  kind: 'stored' | 'onnx';
  files: string[];
  /** onnx only: how onnxruntime ran (version, threads, graph optimization level). */
  runtime?: { name: string; version: string; threads: number; optimization: string };
}

/**
 * How a checkpoint's reference value was found: by the tensor name a stored reference gives it
 * (output), by module scope in an ONNX graph (scope), or, failing both, by closest value among the
 * graph's values of the same shape (value: a guess, see note).
 */
export type CheckpointMatch = 'output' | 'scope' | 'value';

export interface CheckpointComparison {
  /** Run label and our tap name: "initial/layer.1/attn.scores". */
  name: string;
  /** The reference value: a stored tensor name or an ONNX value name. */
  reference: string;
  match: CheckpointMatch;
  note: string;
  shape: number[];
  maxAbsDiff: number;
  maxRelDiff: number;
  /** Cosine similarity over the unmasked, finite elements (mask fills left out). */
  cosine: number;
  atol: number;
  rtol: number;
  pass: boolean;
  compared: number;
}

export interface Divergence {
  /** The checkpoint name, as in firstDivergence. */
  name: string;
  run: string;
  /** "layer.1", "encoder/layer.0", "encoder" (stack-level values), or null (embeddings, logits). */
  layer: string | null;
  /** "attn.scores", "mlp.act", "mlp_norm", "position_bias", "logits", … */
  subBlock: string;
  maxAbsDiff: number;
  cosine: number;
  reference: string;
  match: CheckpointMatch;
  /** The checkpoint before it in the same run that passed: the fault lies after it. */
  lastPassing: string | null;
}

export type CurvePolicy = 'deterministic' | 'approximate';

/** From `fromStep` on (until the next bound), the tolerance is the floor, or k · noise. */
export interface EnvelopeBound {
  fromStep: number;
  by: 'floor' | 'noise';
}

/** How a per-step envelope set a metric's tolerance, and what it was at each step. */
export interface CurveEnvelope {
  /** Where the noise was measured: "train_curve.float64.json (loss)", "noise.wasm.json (loss)". */
  source: string;
  k: number;
  /** The floor: atol + rtol·|ref|. */
  atol: number;
  rtol: number;
  /** The tolerance applied at each compared step, in the reference's step order. */
  tolerance: number[];
  bounds: EnvelopeBound[];
}

export interface MetricComparison {
  metric: string;
  policy: CurvePolicy;
  /** The tolerance without an envelope; with one, its floor. */
  atol: number;
  rtol: number;
  envelope?: CurveEnvelope;
  /** Why a failure may be noise rather than a bug, and what would measure it (no envelope only). */
  hint?: string;
  allowedFailingSteps: number;
  pass: boolean;
  steps: number;
  maxAbsDiff: number;
  maxRelDiff: number;
  /** Step (0-based optimizer step) where |diff| is largest. */
  maxAbsDiffStep: number | null;
  failingSteps: number;
  firstFailingStep: number | null;
}

export interface TrainVerdict {
  pass: boolean;
  steps: number;
  /** Of the loss curve (the headline metric); per metric below. */
  maxAbsDiff: number;
  maxRelDiff: number;
  failingSteps: number;
  firstFailingStep: number | null;
  msPerStep: number;
  /** Where clipping and AdamW ran: host (float32-exact emulation of the reference) or device. */
  optimizer?: 'host' | 'device';
  /** The memory plan the run followed: its estimate, and whether layers were recomputed. */
  memory?: { estimate: string; recompute: boolean; deviceBytes: number; hostBytes: number };
  metrics: MetricComparison[];
  /** Set when the run stopped early (NaN/Inf loss or gradient), naming the step. */
  stoppedAt?: { step: number; reason: string };
}

export interface GenerationCase {
  name: string;
  cached: number[];
  uncached: number[];
  reference: number[];
  maxLogitDiff: number;
  /** The step-logit tolerance this case was held to. */
  logitAtol?: number;
  pass: boolean;
}

export interface GenerationVerdict {
  pass: boolean;
  cachedEqualsUncached: boolean;
  /** Greedy tokens identical to the reference's, every case. */
  tokensMatchReference: boolean;
  /** Every step's logits within the logit tolerance, every case. */
  logitsWithinTolerance: boolean;
  /** Both of the above (kept for readers of the first schema). */
  matchesReference: boolean;
  maxLogitDiff: number;
  /** The widest step-logit tolerance applied. */
  logitAtol?: number;
  /** How the logit tolerance was widened from the reference's float64 forward record, per weights. */
  logitEnvelope?: string;
  cases: GenerationCase[];
}

/** Our own per-backend regression golden, checked with the deterministic policy. */
export interface GoldenVerdict {
  backend: string;
  file: string;
  /** false when no golden exists yet for this backend: reported, never a silent pass. */
  present: boolean;
  pass: boolean;
  metrics: MetricComparison[];
}

export interface EnvironmentInfo {
  backend: string;
  /** The GPU adapter a webgpu run computed on (vendor, architecture, device, driver description). */
  adapter?: { vendor: string; architecture: string; device: string; description: string; software: boolean };
  /** The golden file key: the backend, plus the device class for a GPU backend. */
  goldenKey?: string;
  /** Backends auto selection passed over before this one, with why ("no GPU", "software adapter"). */
  skippedBackends?: Array<{ name: string; reason: string }>;
  node: string;
  tfjs: string;
  platform: string;
  commit: string | null;
  /** sha256 of every suite file used, by file name. */
  suiteHashes: Record<string, string>;
  /** The process's peak resident set when the checks had run (checkpoint reads, backend, reference tensors included). */
  peakRssBytes?: number;
}

export interface Verdict {
  schema: 1;
  suite: string;
  model: string;
  backend: string;
  pass: boolean;
  /** ISO timestamps. */
  startedAt: string;
  finishedAt: string;
  /** The suite folder as given. */
  suiteDir: string;
  forward?: ForwardVerdict;
  train?: TrainVerdict;
  generation?: GenerationVerdict;
  golden?: GoldenVerdict;
  environment: EnvironmentInfo;
}
