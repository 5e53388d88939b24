/**
 * HF BertForPreTraining and MegatronBertForPreTraining names -> ours (FORMATS.md §1.2).
 * Post-LN BERT: attention.output.LayerNorm follows attention, output.LayerNorm follows the MLP.
 * Megatron BERT (pre-LN): attention.ln precedes attention, ln precedes the MLP, encoder.ln is final.
 */
import type { MapRule, WeightMap } from '../map.ts';
import { drop, norm, torchLinear } from './rules.ts';

const L = 'bert.encoder.layer.{i}';
const T = 'layers.{i}';

const shared: MapRule[] = [
  { from: 'bert.embeddings.word_embeddings.weight', to: 'embeddings.word' },
  { from: 'bert.embeddings.position_embeddings.weight', to: 'embeddings.position' },
  { from: 'bert.embeddings.token_type_embeddings.weight', to: 'embeddings.token_type' },
  drop('bert.embeddings.position_ids', 'buffer (position ids), not a weight'),
  ...torchLinear(`${L}.attention.self.query`, `${T}.attn.q`),
  ...torchLinear(`${L}.attention.self.key`, `${T}.attn.k`),
  ...torchLinear(`${L}.attention.self.value`, `${T}.attn.v`),
  ...torchLinear(`${L}.attention.output.dense`, `${T}.attn.o`),
  ...torchLinear(`${L}.intermediate.dense`, `${T}.mlp.fc_in`),
  ...torchLinear(`${L}.output.dense`, `${T}.mlp.fc_out`),
  ...torchLinear('bert.pooler.dense', 'pooler'),
  ...torchLinear('cls.predictions.transform.dense', 'lm_head.transform'),
  ...norm('cls.predictions.transform.LayerNorm', 'lm_head.norm'),
  { from: 'cls.predictions.bias', to: 'lm_head.bias' },
  drop('cls.predictions.decoder.weight', 'tied to the word embeddings', 'bert.embeddings.word_embeddings.weight'),
  drop('cls.predictions.decoder.bias', 'alias of cls.predictions.bias', 'cls.predictions.bias'),
  ...torchLinear('cls.seq_relationship', 'nsp'),
];

export const hfBertMap: WeightMap = {
  name: 'hf-bert',
  rules: [
    ...shared,
    ...norm('bert.embeddings.LayerNorm', 'embeddings.norm'),
    ...norm(`${L}.attention.output.LayerNorm`, `${T}.attn_norm`),
    ...norm(`${L}.output.LayerNorm`, `${T}.mlp_norm`),
  ],
};

export const hfMegatronBertMap: WeightMap = {
  name: 'hf-megatron-bert',
  rules: [
    ...shared,
    ...norm(`${L}.attention.ln`, `${T}.attn_norm`),
    ...norm(`${L}.ln`, `${T}.mlp_norm`),
    ...norm('bert.encoder.ln', 'final_norm'),
  ],
};
