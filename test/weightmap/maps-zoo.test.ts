/**
 * The LLaMA, RoBERTa and ViT maps on what the shipped checkpoints do not hold: tensors other
 * writers add (RoBERTa's and ViT's poolers, LLaMA's rotary buffer of transformers < 4.31) are
 * dropped with a reason, a tied LLaMA head reads from the embedding, and the patch kernel moves
 * its output axis last element by element.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelFromConfig, modelFromConfigJson, weightMapFor } from '../../src/families/registry.ts';
import { inMemoryTensor, type Checkpoint } from '../../src/weightmap/checkpoint.ts';
import { applyWeightMap, isComplete } from '../../src/weightmap/map.ts';
import { readSafetensors } from '../../src/weightmap/readers/safetensors.ts';
import { BASELINES } from '../support/backend.ts';

/** A shipped suite's model.safetensors plus extra tensors. */
function withExtra(suite: string, extra: Record<string, number[]>): Checkpoint {
  const base = readSafetensors(join(BASELINES, suite, 'model.safetensors'));
  const tensors = new Map(base.tensors);
  for (const [name, shape] of Object.entries(extra)) tensors.set(name, inMemoryTensor(name, shape, new Float32Array(shape.reduce((a, b) => a * b, 1)), 'extra'));
  return { format: 'safetensors', path: 'extra.safetensors', tensors, meta: {} };
}

describe('tensors other writers add', () => {
  it.each([
    ['roberta', { 'roberta.pooler.dense.weight': [64, 64], 'roberta.pooler.dense.bias': [64] }],
    ['vit', { 'vit.pooler.dense.weight': [64, 64], 'vit.pooler.dense.bias': [64] }],
    ['llama', { 'model.layers.0.self_attn.rotary_emb.inv_freq': [8], 'model.layers.1.self_attn.rotary_emb.inv_freq': [8] }],
  ] as Array<[string, Record<string, number[]>]>)('%s: %o are dropped with a reason; the mapping stays complete', (suite, extra) => {
    const model = modelFromConfig(join(BASELINES, suite, 'config.json'));
    const { report } = applyWeightMap(withExtra(suite, extra), weightMapFor(model), model.specs);
    expect(isComplete(report)).toBe(true);
    for (const name of Object.keys(extra)) expect(report.rows.find((r) => r.source === name)).toMatchObject({ status: 'dropped', note: expect.any(String) });
  });
});

describe('a tied LLaMA head', () => {
  it('has no lm_head parameter, and a saved lm_head.weight must equal the embedding', () => {
    const json = { model_type: 'llama', vocab_size: 6, hidden_size: 4, num_hidden_layers: 0, num_attention_heads: 2, intermediate_size: 3, tie_word_embeddings: true };
    const model = modelFromConfigJson(json, 'config.json');
    expect(model.specs.map((s) => s.name)).toEqual(['embeddings.word', 'final_norm.weight']);
    const embed = Float32Array.from({ length: 24 }, (_, i) => i);
    const ckpt = (head: Float32Array): Checkpoint => ({
      format: 'safetensors', path: 'tied.safetensors', meta: {},
      tensors: new Map([
        ['model.embed_tokens.weight', inMemoryTensor('model.embed_tokens.weight', [6, 4], embed, 'x')],
        ['model.norm.weight', inMemoryTensor('model.norm.weight', [4], new Float32Array(4), 'x')],
        ['lm_head.weight', inMemoryTensor('lm_head.weight', [6, 4], head, 'x')],
      ]),
    });
    expect(isComplete(applyWeightMap(ckpt(embed.slice()), weightMapFor(model), model.specs).report)).toBe(true);
    const differs = applyWeightMap(ckpt(embed.map((v) => v + 1)), weightMapFor(model), model.specs).report;
    expect(differs.mismatched[0]).toMatchObject({ source: 'lm_head.weight', expected: 'equal to its tied twin' });
  });
});

describe('the ViT patch kernel', () => {
  it('torch [O, C, p, p] becomes ours [C, p, p, O]: ours[c][i][j][o] = torch[o][c][i][j]', () => {
    const model = modelFromConfig(join(BASELINES, 'vit', 'config.json'));
    const ckpt = readSafetensors(join(BASELINES, 'vit', 'model.safetensors'));
    const { values } = applyWeightMap(ckpt, weightMapFor(model), model.specs);
    const torch = ckpt.tensors.get('vit.embeddings.patch_embeddings.projection.weight')!.toFloat32(); // [64, 3, 4, 4]
    const ours = values.get('embeddings.patch.weight')!;
    for (const [o, c, i, j] of [[0, 0, 0, 0], [63, 2, 3, 3], [17, 1, 2, 0], [5, 2, 0, 3]]) {
      expect(ours[((c * 4 + i) * 4 + j) * 64 + o]).toBe(torch[((o * 3 + c) * 4 + i) * 4 + j]);
    }
  });
});
