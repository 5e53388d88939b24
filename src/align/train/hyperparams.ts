/**
 * Reads a suite's hyperparams.json — the record of how the reference trained — into one typed
 * TrainSpec. Two layouts are known: HF fixtures (torch AdamW, per-step schedule, clip_grad_norm_)
 * and Megatron fixtures (apex FusedAdam, sample-based schedule, Megatron's clipping rule).
 */
import { InputError } from '../../errors.ts';
import type { JsonObject } from '../../json-file.ts';
import type { ParamSpec } from '../../models/params.ts';
import { targetsForSource, type WeightMap } from '../../weightmap/map.ts';
import type { AdamWConfig, ClipRule } from './optimizer.ts';
import type { DecayStyle, LrSchedule } from './schedule.ts';

export interface TrainSpec {
  steps: number;
  optimizer: AdamWConfig;
  /** Our parameter names trained without weight decay. */
  noDecay: Set<string>;
  schedule: LrSchedule;
  clip: { maxNorm: number; rule: ClipRule } | null;
  /** Record the number of exactly-zero gradient elements after clipping (Megatron's num-zeros). */
  countZeros: boolean;
}

export function parseHyperparams(json: JsonObject, file: string, specs: readonly ParamSpec[], map: WeightMap): TrainSpec {
  const training = obj(json.training, file, 'training');
  const opt = obj(training.optimizer, file, 'training.optimizer');
  const megatron = typeof opt.megatron === 'string' || typeof training.iterations === 'number';
  const betas = opt.betas;
  if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) {
    throw new InputError('optimizer betas must be two numbers', { file, tensor: 'training.optimizer.betas', actual: JSON.stringify(betas) });
  }
  const optimizer: AdamWConfig = {
    rule: megatron ? 'apex-adamw' : 'torch-adamw',
    beta1: betas[0],
    beta2: betas[1],
    eps: num(opt.eps, file, 'training.optimizer.eps'),
    weightDecay: num(opt.weight_decay, file, 'training.optimizer.weight_decay'),
  };
  const steps = int(training.steps ?? training.iterations, file, 'training.steps');
  const samplesPerStep = megatron ? int(training.global_batch_size, file, 'training.global_batch_size') : 1;
  return {
    steps,
    optimizer,
    noDecay: noDecaySet(training.param_groups, file, specs, map),
    schedule: parseSchedule(obj(training.lr_schedule, file, 'training.lr_schedule'), file, megatron, steps, samplesPerStep),
    clip: parseClip(training.grad_clipping ?? training.grad_clip, file, megatron),
    countZeros: megatron,
  };
}

function parseSchedule(s: JsonObject, file: string, megatron: boolean, steps: number, samplesPerStep: number): LrSchedule {
  const key = 'training.lr_schedule';
  const text = `${s.style ?? s.decay_style ?? ''} ${s.megatron ?? ''} ${s.formula ?? ''}`.toLowerCase();
  const style: DecayStyle | undefined = typeof s.style === 'string' ? (s.style as DecayStyle)
    : typeof s.decay_style === 'string' ? (s.decay_style as DecayStyle)
    : text.includes('cos') ? 'cosine' : text.includes('linear') ? 'linear' : text.includes('constant') ? 'constant' : undefined;
  if (!style || !['constant', 'linear', 'cosine', 'inverse-square-root', 'WSD'].includes(style)) {
    throw new InputError('cannot tell the LR decay style', { file, tensor: `${key}.style`, expected: 'constant | linear | cosine | inverse-square-root | WSD', actual: String(style ?? text.trim()) });
  }
  if (megatron) {
    return {
      maxLr: num(s.max_lr, file, `${key}.max_lr`),
      minLr: num(s.min_lr ?? 0, file, `${key}.min_lr`),
      initLr: num(s.warmup_init_lr ?? 0, file, `${key}.warmup_init_lr`),
      warmupSamples: num(s.lr_warmup_steps ?? 0, file, `${key}.lr_warmup_steps`),
      decaySamples: num(s.lr_decay_steps ?? steps * samplesPerStep, file, `${key}.lr_decay_steps`),
      style,
      wsdDecaySamples: s.lr_wsd_decay_steps === undefined ? undefined : num(s.lr_wsd_decay_steps, file, `${key}.lr_wsd_decay_steps`),
      wsdStyle: s.lr_wsd_decay_style as LrSchedule['wsdStyle'],
      samplesPerStep,
    };
  }
  return {
    maxLr: num(s.peak, file, `${key}.peak`),
    minLr: num(s.min ?? 0, file, `${key}.min`),
    initLr: 0,
    warmupSamples: num(s.W_warmup_steps ?? 0, file, `${key}.W_warmup_steps`),
    decaySamples: num(s.T_total_steps ?? steps, file, `${key}.T_total_steps`),
    style,
    samplesPerStep: 1,
  };
}

function parseClip(raw: unknown, file: string, megatron: boolean): TrainSpec['clip'] {
  if (raw === undefined || raw === null) return null;
  const c = obj(raw, file, 'training.grad_clipping');
  return { maxNorm: num(c.max_norm, file, 'training.grad_clipping.max_norm'), rule: megatron ? 'megatron' : 'torch' };
}

/**
 * The reference's no-decay group, translated to our names through the weight map. Without
 * groups, the rule both references follow for these models: 1-D parameters (biases, norms).
 */
function noDecaySet(groups: unknown, file: string, specs: readonly ParamSpec[], map: WeightMap): Set<string> {
  if (groups === undefined) return new Set(specs.filter((s) => s.shape.length === 1).map((s) => s.name));
  const g = obj(groups, file, 'training.param_groups');
  const noDecayKey = Object.keys(g).find((k) => k.startsWith('no_decay'));
  if (!noDecayKey) throw new InputError('param_groups has no no_decay group', { file, tensor: 'training.param_groups' });
  const names = g[noDecayKey];
  if (!Array.isArray(names)) throw new InputError('param group must list names', { file, tensor: `training.param_groups.${noDecayKey}` });
  const known = new Set(specs.map((s) => s.name));
  const out = new Set<string>();
  for (const name of names) {
    const targets = targetsForSource(map, String(name));
    if (targets.length === 0 || !targets.every((t) => known.has(t))) {
      throw new InputError('parameter group names a tensor the weight map does not know', { file, tensor: String(name) });
    }
    for (const t of targets) out.add(t);
  }
  return out;
}

function obj(v: unknown, file: string, key: string): JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('expected an object', { file, tensor: key, actual: JSON.stringify(v) });
  return v as JsonObject;
}

function num(v: unknown, file: string, key: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError('expected a finite number', { file, tensor: key, actual: JSON.stringify(v) });
  return v;
}

function int(v: unknown, file: string, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new InputError('expected a positive integer', { file, tensor: key, actual: JSON.stringify(v) });
  return v;
}
