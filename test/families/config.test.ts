/**
 * HF config.json parsing of the LLaMA, RoBERTa and ViT families: HF's class defaults for absent
 * keys, and every option the models do not implement refused by name (InputError, exit 2) rather
 * than ignored — through the align CLI too.
 */
import { execa } from 'execa';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { modelFromConfigJson } from '../../src/families/registry.ts';
import type { LlamaConfig } from '../../src/models/llama.ts';
import type { RobertaConfig } from '../../src/models/roberta.ts';
import type { VitConfig } from '../../src/models/vit.ts';
import { BASELINES } from '../support/backend.ts';
import { catchError } from '../support/catch-error.ts';
import { REPO, TSX, tempDir } from '../support/suite-copy.ts';

const shipped = (suite: string) => JSON.parse(readFileSync(join(BASELINES, suite, 'config.json'), 'utf8')) as Record<string, unknown>;

describe('HF defaults for absent keys', () => {
  it('llama: LlamaConfig 4.33 defaults (32000 vocab, 4096 hidden, 32 heads, key/value heads = heads, θ 10000, eps 1e-6, silu, untied)', () => {
    const c = modelFromConfigJson({ model_type: 'llama' }, 'config.json').config as LlamaConfig;
    expect(c).toMatchObject({ vocabSize: 32000, hidden: 4096, layers: 32, heads: 32, kvHeads: 32, headDim: 128, intermediate: 11008, maxPositions: 2048, rmsNormEps: 1e-6, ropeTheta: 10000, activation: 'silu', tied: false });
  });

  it('roberta: RobertaConfig defaults (50265 vocab, padding id 1, eps 1e-12, two token types)', () => {
    const c = modelFromConfigJson({ model_type: 'roberta' }, 'config.json').config as RobertaConfig;
    expect(c).toMatchObject({ vocabSize: 50265, hidden: 768, padTokenId: 1, layerNormEps: 1e-12, typeVocabSize: 2, maxPositions: 512, hiddenAct: 'gelu' });
  });

  it('vit: ViTConfig defaults (224×224, patch 16, 2 labels); id2label sets the label count', () => {
    expect(modelFromConfigJson({ model_type: 'vit' }, 'config.json').config as VitConfig).toMatchObject({ imageSize: [224, 224], patchSize: [16, 16], channels: 3, numLabels: 2, layerNormEps: 1e-12 });
    expect((modelFromConfigJson(shipped('vit'), 'config.json').config as VitConfig).numLabels).toBe(10);
  });
});

describe('options the models do not implement are refused by name', () => {
  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    ['llama', 'linear rope scaling', { rope_scaling: { type: 'linear', factor: 2 } }, 'rope_scaling'],
    ['llama', 'attention biases', { attention_bias: true }, 'attention_bias'],
    ['llama', 'MLP biases', { mlp_bias: true }, 'mlp_bias'],
    ['llama', 'a sliding window (Mistral-style)', { sliding_window: 4096 }, 'sliding_window'],
    ['llama', 'sliced projections', { pretraining_tp: 2 }, 'pretraining_tp'],
    ['llama', 'a head_dim other than hidden / heads', { head_dim: 32 }, 'head_dim'],
    ['llama', 'heads that key/value heads do not divide', { num_key_value_heads: 3 }, 'num_attention_heads'],
    ['llama', 'an activation no layer implements', { hidden_act: 'mish' }, 'hidden_act'],
    ['roberta', 'relative position embeddings', { position_embedding_type: 'relative_key' }, 'position_embedding_type'],
    ['roberta', 'a decoder', { is_decoder: true }, 'is_decoder'],
    ['roberta', 'an untied decoder', { tie_word_embeddings: false }, 'tie_word_embeddings'],
    ['roberta', 'a padding id outside the position table', { pad_token_id: 130 }, 'pad_token_id'],
    ['vit', 'unbiased q/k/v', { qkv_bias: false }, 'qkv_bias'],
    ['vit', 'multi-label classification', { problem_type: 'multi_label_classification' }, 'problem_type'],
    ['vit', 'regression (one label)', { id2label: { 0: 'score' } }, 'id2label'],
    ['vit', 'an image that is not a whole number of patches', { image_size: 18 }, 'image_size'],
  ];
  it.each(cases)('%s: %s', (suite, _label, patch, key) => {
    const error = catchError(() => modelFromConfigJson({ ...shipped(suite), ...patch }, 'config.json'));
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).tensor).toBe(key);
    expect((error as InputError).message).toContain('config.json');
  });

  it('a null rope_scaling, a false attention_bias and pretraining_tp 1 are the defaults, and accepted', () => {
    expect(() => modelFromConfigJson({ ...shipped('llama'), rope_scaling: null, attention_bias: false, pretraining_tp: 1, head_dim: 16 }, 'config.json')).not.toThrow();
  });
});

describe('through the align CLI', () => {
  const t = tempDir('parity-llama-config-');
  afterAll(() => t.cleanup());
  it('a LLaMA suite whose config asks for rope_scaling exits 2 naming the file and the key', async () => {
    for (const f of ['config.json', 'model.safetensors', 'eval_inputs.safetensors', 'forward_initial.safetensors']) cpSync(join(BASELINES, 'llama', f), join(t.dir, f));
    writeFileSync(join(t.dir, 'config.json'), JSON.stringify({ ...shipped('llama'), rope_scaling: { type: 'dynamic', factor: 4 } }));
    const r = await execa(TSX, ['src/cli/align.ts', t.dir, '--only', 'forward', '--no-report', '--reports', join(t.dir, 'r')], { cwd: REPO, reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/config\.json: tensor "rope_scaling": rope_scaling is not supported/);
  });
});
