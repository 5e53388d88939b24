/**
 * HF RobertaForMaskedLM names -> ours: BERT's encoder under `roberta.`, and the MLM head as
 * `lm_head.{dense,layer_norm,bias}` with its decoder tied to the word embeddings
 * (lm_head.decoder.{weight,bias} are aliases .bin files keep and safetensors drop).
 */
import type { WeightMap } from '../map.ts';
import { drop, norm, torchLinear } from './rules.ts';

const L = 'roberta.encoder.layer.{i}';
const T = 'layers.{i}';

export const hfRobertaMap: WeightMap = {
  name: 'hf-roberta',
  rules: [
    { from: 'roberta.embeddings.word_embeddings.weight', to: 'embeddings.word' },
    { from: 'roberta.embeddings.position_embeddings.weight', to: 'embeddings.position' },
    { from: 'roberta.embeddings.token_type_embeddings.weight', to: 'embeddings.token_type' },
    ...norm('roberta.embeddings.LayerNorm', 'embeddings.norm'),
    drop('roberta.embeddings.position_ids', 'buffer (position ids), not a weight'),
    drop('roberta.embeddings.token_type_ids', 'buffer (token type ids), not a weight'),
    ...torchLinear(`${L}.attention.self.query`, `${T}.attn.q`),
    ...torchLinear(`${L}.attention.self.key`, `${T}.attn.k`),
    ...torchLinear(`${L}.attention.self.value`, `${T}.attn.v`),
    ...torchLinear(`${L}.attention.output.dense`, `${T}.attn.o`),
    ...norm(`${L}.attention.output.LayerNorm`, `${T}.attn_norm`),
    ...torchLinear(`${L}.intermediate.dense`, `${T}.mlp.fc_in`),
    ...torchLinear(`${L}.output.dense`, `${T}.mlp.fc_out`),
    ...norm(`${L}.output.LayerNorm`, `${T}.mlp_norm`),
    ...torchLinear('lm_head.dense', 'lm_head.transform'),
    ...norm('lm_head.layer_norm', 'lm_head.norm'),
    { from: 'lm_head.bias', to: 'lm_head.bias' },
    drop('lm_head.decoder.weight', 'tied to the word embeddings', 'roberta.embeddings.word_embeddings.weight'),
    drop('lm_head.decoder.bias', 'alias of lm_head.bias', 'lm_head.bias'),
    // Hub checkpoints such as roberta-base carry RobertaModel's pooler, which HF drops on load too.
    ...['weight', 'bias'].map((p) => drop(`roberta.pooler.dense.${p}`, 'unused: RobertaForMaskedLM has no pooler')),
  ],
};
