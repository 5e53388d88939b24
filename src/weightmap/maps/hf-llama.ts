/**
 * HF LlamaForCausalLM names -> ours. torch Linear weights [out, in] are transposed; there are no
 * biases. k_proj/v_proj have num_key_value_heads · head_dim rows (grouped-query attention).
 * The rotary `inv_freq` buffer is not a weight (transformers < 4.31 saved it in .bin files).
 */
import type { MapRule, WeightMap } from '../map.ts';
import { drop, torchLinear } from './rules.ts';

const L = 'model.layers.{i}';
const T = 'layers.{i}';
const linear = (from: string, to: string) => torchLinear(from, to, false);

const common: MapRule[] = [
  { from: 'model.embed_tokens.weight', to: 'embeddings.word' },
  { from: `${L}.input_layernorm.weight`, to: `${T}.attn_norm.weight` },
  ...linear(`${L}.self_attn.q_proj`, `${T}.attn.q`),
  ...linear(`${L}.self_attn.k_proj`, `${T}.attn.k`),
  ...linear(`${L}.self_attn.v_proj`, `${T}.attn.v`),
  ...linear(`${L}.self_attn.o_proj`, `${T}.attn.o`),
  drop(`${L}.self_attn.rotary_emb.inv_freq`, 'buffer (rotary frequencies), not a weight'),
  { from: `${L}.post_attention_layernorm.weight`, to: `${T}.mlp_norm.weight` },
  ...linear(`${L}.mlp.gate_proj`, `${T}.mlp.fc_gate`),
  ...linear(`${L}.mlp.up_proj`, `${T}.mlp.fc_in`),
  ...linear(`${L}.mlp.down_proj`, `${T}.mlp.fc_out`),
  { from: 'model.norm.weight', to: 'final_norm.weight' },
];

/** lm_head is its own matrix (tie_word_embeddings false, LLaMA's default). */
export const hfLlamaMap: WeightMap = { name: 'hf-llama', rules: [...common, { from: 'lm_head.weight', to: 'lm_head' }] };

/** lm_head is the word embedding (tie_word_embeddings true). */
export const hfLlamaTiedMap: WeightMap = { name: 'hf-llama-tied', rules: [...common, drop('lm_head.weight', 'tied to the word embeddings', 'model.embed_tokens.weight')] };
