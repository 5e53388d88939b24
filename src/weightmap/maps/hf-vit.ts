/**
 * HF ViTForImageClassification names -> ours. The patch projection is a Conv2d [O, C, p, p],
 * kept as [C, p, p, O] (outputs last, like our Linear kernels); the [CLS] token and position
 * table keep HF's shapes. Pre-LN: layernorm_before precedes attention, layernorm_after the MLP.
 */
import type { WeightMap } from '../map.ts';
import { drop, norm, torchLinear } from './rules.ts';

const L = 'vit.encoder.layer.{i}';
const T = 'layers.{i}';

export const hfVitMap: WeightMap = {
  name: 'hf-vit',
  rules: [
    { from: 'vit.embeddings.cls_token', to: 'embeddings.cls' },
    { from: 'vit.embeddings.position_embeddings', to: 'embeddings.position' },
    { from: 'vit.embeddings.patch_embeddings.projection.weight', to: 'embeddings.patch.weight', transform: 'outputsLast' },
    { from: 'vit.embeddings.patch_embeddings.projection.bias', to: 'embeddings.patch.bias' },
    ...norm(`${L}.layernorm_before`, `${T}.attn_norm`),
    ...torchLinear(`${L}.attention.attention.query`, `${T}.attn.q`),
    ...torchLinear(`${L}.attention.attention.key`, `${T}.attn.k`),
    ...torchLinear(`${L}.attention.attention.value`, `${T}.attn.v`),
    ...torchLinear(`${L}.attention.output.dense`, `${T}.attn.o`),
    ...norm(`${L}.layernorm_after`, `${T}.mlp_norm`),
    ...torchLinear(`${L}.intermediate.dense`, `${T}.mlp.fc_in`),
    ...torchLinear(`${L}.output.dense`, `${T}.mlp.fc_out`),
    ...norm('vit.layernorm', 'final_norm'),
    ...torchLinear('classifier', 'classifier'),
    // Checkpoints saved from ViTModel carry a pooler, which ViTForImageClassification does not build.
    ...['weight', 'bias'].map((p) => drop(`vit.pooler.dense.${p}`, 'unused: ViTForImageClassification has no pooler')),
  ],
};
