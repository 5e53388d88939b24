/**
 * Model configuration from a Megatron checkpoint's own `args` (FORMATS.md §6, §9), for folders
 * that carry no HF config.json: which Megatron model a checkpoint holds, and the settings every
 * Megatron transformer shares. Each family with Megatron support (registry.ts) turns these into
 * its own config; both keep the padded vocabulary, because Megatron's softmax runs over it.
 */
import { InputError } from '../errors.ts';
import type { Activation } from '../layers/activations.ts';
import type { Checkpoint } from '../weightmap/checkpoint.ts';

export type MegatronArch = 'gpt' | 'bert';

/** BERT checkpoints carry a token-type embedding or BERT heads; GPT ones do not. */
export function megatronArch(ckpt: Checkpoint): MegatronArch {
  const names = [...ckpt.tensors.keys()];
  return names.some((n) => n.includes('tokentype_embeddings') || n.startsWith('binary_head') || n.startsWith('lm_head.dense')) ? 'bert' : 'gpt';
}

/** Typed reads of `args`, failing with the checkpoint and key named. */
export class MegatronArgs {
  private constructor(
    readonly args: Readonly<Record<string, unknown>>,
    readonly file: string,
  ) {}

  static of(ckpt: Checkpoint): MegatronArgs {
    const args = ckpt.meta.args as Record<string, unknown> | undefined;
    if (!args || typeof args !== 'object') throw new InputError('Megatron checkpoint has no args to configure a model from', { file: ckpt.path });
    return new MegatronArgs(args, ckpt.path);
  }

  num(key: string, fallback?: number): number {
    const v = this.args[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError('Megatron args lack a number', { file: this.file, tensor: `args.${key}`, actual: JSON.stringify(v) });
    return v;
  }

  flag(key: string): boolean {
    return this.args[key] === true;
  }

  /** What every Megatron transformer we load shares; refuses the options our models do not implement. */
  common(): MegatronCommon {
    if (this.flag('swiglu')) throw new InputError('SwiGLU Megatron models are not supported', { file: this.file, tensor: 'args.swiglu' });
    if (this.flag('untie_embeddings_and_output_weights')) throw new InputError('untied output layers are not supported', { file: this.file, tensor: 'args.untie_embeddings_and_output_weights' });
    const hidden = this.num('hidden_size');
    // --bias-gelu-fusion and --openai-gelu use the tanh form; otherwise exact erf (FORMATS.md §9).
    const tanhGelu = this.flag('bias_gelu_fusion') || this.flag('openai_gelu');
    return {
      hidden,
      layers: this.num('num_layers'),
      heads: this.num('num_attention_heads'),
      maxPositions: this.num('max_position_embeddings'),
      vocabSize: this.num('padded_vocab_size'),
      ffn: this.num('ffn_hidden_size', 4 * hidden),
      eps: this.num(this.args.norm_epsilon !== undefined ? 'norm_epsilon' : 'layernorm_epsilon', 1e-5),
      activation: this.flag('bias_gelu_fusion') ? 'gelu_fast' : tanhGelu ? 'gelu_new' : 'gelu',
    };
  }
}

export interface MegatronCommon {
  hidden: number;
  layers: number;
  heads: number;
  maxPositions: number;
  /** padded_vocab_size: the rows the checkpoint holds. */
  vocabSize: number;
  ffn: number;
  eps: number;
  activation: Activation;
}
