/**
 * HF GPT2LMHeadModel names -> ours (FORMATS.md §1.3). Conv1D weights are already [in, out];
 * c_attn's output columns are q|k|v. Hub files exist with and without the `transformer.` prefix.
 */
import type { MapRule, WeightMap } from '../map.ts';
import { conv1d, drop, norm } from './rules.ts';

const L = 'h.{i}';
const T = 'layers.{i}';

const common: MapRule[] = [
  { from: 'wte.weight', to: 'embeddings.word' },
  { from: 'wpe.weight', to: 'embeddings.position' },
  ...norm(`${L}.ln_1`, `${T}.attn_norm`),
  { from: `${L}.attn.c_attn.weight`, to: [`${T}.attn.q.weight`, `${T}.attn.k.weight`, `${T}.attn.v.weight`], transform: 'splitColumns3' },
  { from: `${L}.attn.c_attn.bias`, to: [`${T}.attn.q.bias`, `${T}.attn.k.bias`, `${T}.attn.v.bias`], transform: 'splitColumns3' },
  ...conv1d(`${L}.attn.c_proj`, `${T}.attn.o`),
  drop(`${L}.attn.bias`, 'buffer (causal mask), not a weight'),
  drop(`${L}.attn.masked_bias`, 'buffer (mask fill), not a weight'),
  ...norm(`${L}.ln_2`, `${T}.mlp_norm`),
  ...conv1d(`${L}.mlp.c_fc`, `${T}.mlp.fc_in`),
  ...conv1d(`${L}.mlp.c_proj`, `${T}.mlp.fc_out`),
  ...norm('ln_f', 'final_norm'),
];

export const hfGpt2Map: WeightMap = {
  name: 'hf-gpt2',
  optionalPrefixes: ['transformer.'],
  rules: [...common, drop('lm_head.weight', 'tied to the word embeddings', 'wte.weight')],
};

/** tie_word_embeddings false: lm_head is a matrix of its own. */
export const hfGpt2UntiedMap: WeightMap = {
  name: 'hf-gpt2-untied',
  optionalPrefixes: ['transformer.'],
  rules: [...common, { from: 'lm_head.weight', to: 'lm_head' }],
};
