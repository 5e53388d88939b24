/**
 * Megatron-LM legacy checkpoint names (as readers/megatron.ts merges them: TP/PP stitched, layers
 * renumbered, fused QKV canonicalised to [np, 3, hn]) -> ours. Norms are accepted under the
 * pre-2023-09 `*layernorm*` and the newer `*norm*` names. The padded vocabulary is kept: Megatron's
 * softmax runs over every padded column (FORMATS.md §6–§8).
 */
import type { MapRule, WeightMap } from '../map.ts';
import { norm, torchLinear } from './rules.ts';

const E = 'language_model.encoder';
const L = `${E}.layers.{i}`;
const T = 'layers.{i}';

/** A norm under both spellings: `<old>` (…layernorm) and `<new>` (…norm). */
function norms(oldName: string, newName: string, to: string): MapRule[] {
  return [...norm(oldName, to), ...norm(newName, to)];
}

const transformer: MapRule[] = [
  { from: 'language_model.embedding.word_embeddings.weight', to: 'embeddings.word' },
  { from: 'language_model.embedding.position_embeddings.weight', to: 'embeddings.position' },
  ...norms(`${L}.input_layernorm`, `${L}.input_norm`, `${T}.attn_norm`),
  { from: `${L}.self_attention.query_key_value.weight`, to: [`${T}.attn.q.weight`, `${T}.attn.k.weight`, `${T}.attn.v.weight`], transform: 'splitHeadsInterleaved3' },
  { from: `${L}.self_attention.query_key_value.bias`, to: [`${T}.attn.q.bias`, `${T}.attn.k.bias`, `${T}.attn.v.bias`], transform: 'splitHeadsInterleaved3' },
  ...torchLinear(`${L}.self_attention.dense`, `${T}.attn.o`),
  ...norms(`${L}.post_attention_layernorm`, `${L}.post_attention_norm`, `${T}.mlp_norm`),
  ...torchLinear(`${L}.mlp.dense_h_to_4h`, `${T}.mlp.fc_in`),
  ...torchLinear(`${L}.mlp.dense_4h_to_h`, `${T}.mlp.fc_out`),
  ...norms(`${E}.final_layernorm`, `${E}.final_norm`, 'final_norm'),
];

/** GPT (tied output layer) onto our GPT-2 model. */
export const megatronGptMap: WeightMap = { name: 'megatron-gpt', rules: transformer };

/** BERT (pre-LN, tied LM head, binary head) onto our BERT model in its Megatron placement. */
export const megatronBertMap: WeightMap = {
  name: 'megatron-bert',
  rules: [
    ...transformer,
    { from: 'language_model.embedding.tokentype_embeddings.weight', to: 'embeddings.token_type' },
    ...torchLinear('language_model.pooler.dense', 'pooler'),
    ...torchLinear('lm_head.dense', 'lm_head.transform'),
    ...norms('lm_head.layernorm', 'lm_head.norm', 'lm_head.norm'),
    { from: 'lm_head.bias', to: 'lm_head.bias' },
    ...torchLinear('binary_head', 'nsp'),
  ],
};
