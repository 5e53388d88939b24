/**
 * Megatron BERT: pre-LN BERT (norms before each sublayer, no embedding norm, a final norm), as
 * HF's MegatronBertForPreTraining and as Megatron-LM's own legacy checkpoints. Its loss parts keep
 * Megatron's names (lm_loss, binary_loss) and its sentence-order loss Megatron's ignore index −1.
 */
import { FLOAT32_MIN } from '../layers/masks.ts';
import { bertModel, type BertConfig } from '../models/bert.ts';
import { hfMegatronBertMap } from '../weightmap/maps/hf-bert.ts';
import { megatronBertMap } from '../weightmap/maps/megatron.ts';
import { bertLikeConfig } from './bert.ts';
import { family } from './family.ts';
import type { MegatronArgs } from './megatron-args.ts';

const LOSSES = { mlm: 'lm_loss', nsp: 'binary_loss' } as const;
const MEGATRON = { placement: 'pre', lossNames: LOSSES, nspIgnoreIndex: -1 } as const;

function configFromArgs(args: MegatronArgs): BertConfig {
  const m = args.common();
  return {
    vocabSize: m.vocabSize,
    hidden: m.hidden,
    layers: m.layers,
    heads: m.heads,
    maxPositions: m.maxPositions,
    intermediate: m.ffn,
    typeVocabSize: 2,
    layerNormEps: m.eps,
    hiddenAct: m.activation,
    // Megatron's LM head is exact erf even when its MLP fuses the tanh form.
    headAct: 'gelu',
    maskFill: FLOAT32_MIN,
    ...MEGATRON,
  };
}

export const megatronBert = family<BertConfig>({
  name: 'megatron-bert',
  arch: 'bert',
  modelTypes: ['megatron-bert'],
  configFromHf: (json, file) => ({ ...bertLikeConfig(json, file, 'megatron-bert'), ...MEGATRON }),
  build: bertModel,
  hfMap: () => hfMegatronBertMap,
  megatron: { arch: 'bert', map: megatronBertMap, configFromArgs },
  megatronLosses: { 'lm loss': LOSSES.mlm, 'sop loss': LOSSES.nsp },
});
