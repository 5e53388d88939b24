/**
 * HF T5ForConditionalGeneration names -> ours (FORMATS.md §1.4). No biases; torch [out,in]
 * weights are transposed. The relative attention bias lives in block 0 of each stack only.
 * `encoder.embed_tokens` / `decoder.embed_tokens` (and a tied lm_head) alias `shared` in .bin files.
 */
import type { MapRule, WeightMap } from '../map.ts';
import { drop } from './rules.ts';

const t = (from: string, to: string): MapRule => ({ from: `${from}.weight`, to: `${to}.weight`, transform: 'transpose' });

function stack(S: 'encoder' | 'decoder'): MapRule[] {
  const B = `${S}.block.{i}.layer`;
  const T = `${S}.layers.{i}`;
  const ffIndex = S === 'encoder' ? 1 : 2;
  const rules: MapRule[] = [
    { from: `${S}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`, to: `${S}.relative_bias` },
    ...['q', 'k', 'v', 'o'].map((p) => t(`${B}.0.SelfAttention.${p}`, `${T}.attn.${p}`)),
    { from: `${B}.0.layer_norm.weight`, to: `${T}.attn_norm.weight` },
    t(`${B}.${ffIndex}.DenseReluDense.wi`, `${T}.mlp.fc_in`),
    t(`${B}.${ffIndex}.DenseReluDense.wi_0`, `${T}.mlp.fc_gate`),
    t(`${B}.${ffIndex}.DenseReluDense.wi_1`, `${T}.mlp.fc_in`),
    t(`${B}.${ffIndex}.DenseReluDense.wo`, `${T}.mlp.fc_out`),
    { from: `${B}.${ffIndex}.layer_norm.weight`, to: `${T}.mlp_norm.weight` },
    { from: `${S}.final_layer_norm.weight`, to: `${S}.final_norm.weight` },
    drop(`${S}.embed_tokens.weight`, 'alias of shared', 'shared.weight'),
  ];
  if (S === 'decoder') {
    rules.push(
      drop('decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight', 'unused: cross-attention has no position bias'),
      ...['q', 'k', 'v', 'o'].map((p) => t(`${B}.1.EncDecAttention.${p}`, `${T}.cross.${p}`)),
      { from: `${B}.1.layer_norm.weight`, to: `${T}.cross_norm.weight` },
    );
  }
  return rules;
}

const common: MapRule[] = [{ from: 'shared.weight', to: 'shared' }, ...stack('encoder'), ...stack('decoder')];

/** v1.0: lm_head is the shared embedding. */
export const hfT5TiedMap: WeightMap = { name: 'hf-t5', rules: [...common, drop('lm_head.weight', 'tied to shared', 'shared.weight')] };

/** v1.1: lm_head is its own matrix (no rescale). */
export const hfT5UntiedMap: WeightMap = { name: 'hf-t5-untied', rules: [...common, { from: 'lm_head.weight', to: 'lm_head' }] };
