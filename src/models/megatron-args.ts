/**
 * Model configuration from a Megatron checkpoint's own `args` (FORMATS.md §6, §9), for folders
 * that carry no HF config.json. GPT becomes our GPT-2 model, BERT our pre-LN BERT; both keep the
 * padded vocabulary, because Megatron's softmax runs over it.
 */
import { InputError } from '../errors.ts';
import type { Activation } from '../layers/activations.ts';
import { FLOAT32_MIN } from '../layers/masks.ts';
import type { Checkpoint } from '../weightmap/checkpoint.ts';
import { bertModel, type BertConfig } from './bert.ts';
import { gpt2Model } from './gpt2.ts';
import type { Model } from './model.ts';

export type MegatronArch = 'gpt' | 'bert';

/** BERT checkpoints carry a token-type embedding or BERT heads; GPT ones do not. */
export function megatronArch(ckpt: Checkpoint): MegatronArch {
  const names = [...ckpt.tensors.keys()];
  return names.some((n) => n.includes('tokentype_embeddings') || n.startsWith('binary_head') || n.startsWith('lm_head.dense')) ? 'bert' : 'gpt';
}

export function modelFromMegatron(ckpt: Checkpoint): Model {
  const args = ckpt.meta.args as Record<string, unknown> | undefined;
  if (!args || typeof args !== 'object') throw new InputError('Megatron checkpoint has no args to configure a model from', { file: ckpt.path });
  const num = (key: string, fallback?: number): number => {
    const v = args[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError('Megatron args lack a number', { file: ckpt.path, tensor: `args.${key}`, actual: JSON.stringify(v) });
    return v;
  };
  if (args.swiglu === true) throw new InputError('SwiGLU Megatron models are not supported', { file: ckpt.path, tensor: 'args.swiglu' });
  if (args.untie_embeddings_and_output_weights === true) throw new InputError('untied output layers are not supported', { file: ckpt.path, tensor: 'args.untie_embeddings_and_output_weights' });
  const hidden = num('hidden_size');
  const vocab = num('padded_vocab_size');
  const eps = num(args.norm_epsilon !== undefined ? 'norm_epsilon' : 'layernorm_epsilon', 1e-5);
  // --bias-gelu-fusion and --openai-gelu use the tanh form; otherwise exact erf (FORMATS.md §9).
  const tanhGelu = args.bias_gelu_fusion === true || args.openai_gelu === true;
  const activation: Activation = args.bias_gelu_fusion === true ? 'gelu_fast' : tanhGelu ? 'gelu_new' : 'gelu';
  const common = { hidden, layers: num('num_layers'), heads: num('num_attention_heads'), maxPositions: num('max_position_embeddings') };
  if (megatronArch(ckpt) === 'gpt') {
    return gpt2Model({ ...common, vocabSize: vocab, inner: num('ffn_hidden_size', 4 * hidden), layerNormEps: eps, activation, scaleScores: true, maskFill: FLOAT32_MIN });
  }
  const config: BertConfig = {
    ...common,
    vocabSize: vocab,
    intermediate: num('ffn_hidden_size', 4 * hidden),
    typeVocabSize: 2,
    layerNormEps: eps,
    hiddenAct: activation,
    headAct: 'gelu',
    placement: 'pre',
    maskFill: FLOAT32_MIN,
    lossNames: { mlm: 'lm_loss', nsp: 'binary_loss' },
    nspIgnoreIndex: -1,
  };
  return bertModel(config);
}
