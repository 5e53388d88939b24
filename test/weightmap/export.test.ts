/**
 * Export (our parameters -> a foreign layout), derived from the weight maps. Oracles:
 *  - the shipped HF files: every HF suite read and exported again gives back exactly the tensors of
 *    its model.safetensors; every Megatron variant exported to HF gives exactly the HF GPT-2 /
 *    MegatronBert weights the fixtures' READMEs name (bit-exact, compared on raw file bytes);
 *  - small hand-written maps and values for the rules HF files cannot exercise (spelling choice,
 *    prefixes, partial fused groups, layer 10 after layer 2).
 * Excluded from comparisons: `bert.embeddings.position_ids`, an int64 buffer (FORMATS §1.1: not a
 * weight, no longer saved since HF v4.31) that the maps drop on purpose and export never writes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { inMemoryTensor, type Checkpoint } from '../../src/weightmap/checkpoint.ts';
import { chooseModel } from '../../src/families/choose-model.ts';
import { hfExportMap, hfExportOptions, weightMapFor } from '../../src/families/registry.ts';
import { exportToHf, megatronVocabSize, trimVocabulary, type ExportModel, type ExportedTensor } from '../../src/weightmap/export.ts';
import { applyWeightMap, isComplete, type WeightMap } from '../../src/weightmap/map.ts';
import { openCheckpoint } from '../../src/weightmap/readers/detect.ts';
import { BASELINES } from '../support/backend.ts';
import { f32Bytes } from '../support/raw-safetensors.ts';
import { expectSameTensors } from '../support/raw-safetensors.ts';

const POSITION_IDS = 'bert.embeddings.position_ids';
const BUFFERS: Record<string, string[]> = { bert: [POSITION_IDS], 'megatron-bert': [POSITION_IDS] };

/** Reads a checkpoint the way the CLI does and insists the mapping is complete. */
function readMapped(path: string) {
  const ckpt = openCheckpoint(path);
  const { model } = chooseModel(ckpt, {});
  const { values, report } = applyWeightMap(ckpt, weightMapFor(model, ckpt.format), model.specs, { heads: (model.config as { heads: number }).heads });
  expect(isComplete(report), JSON.stringify({ unmapped: report.unmapped, missing: report.missing, mismatched: report.mismatched })).toBe(true);
  return { ckpt, model, values };
}

const asRaw = (tensors: ExportedTensor[]) => new Map(tensors.map((t) => [t.name, { shape: t.shape, bytes: f32Bytes(t.data) }]));

describe('HF round trip: read with the family map, export with its inverse', () => {
  const cases = ['bert', 'gpt2', 't5', 't5v11', 'llama', 'roberta', 'vit'].flatMap((suite) => ['model.safetensors', 'pytorch_model.bin'].map((file) => [suite, file] as const));
  it.each(cases)('%s/%s exports exactly the tensors of model.safetensors', (suite, file) => {
    const { model, values } = readMapped(join(BASELINES, suite, file));
    const map = hfExportMap(model);
    const tensors = exportToHf(values, model, map, hfExportOptions(model, map));
    // The .bin's tied aliases (decoder.weight, lm_head.weight, embed_tokens) are absent from the
    // safetensors file too, as save_pretrained removes them; so one reference serves both.
    expectSameTensors(asRaw(tensors), join(BASELINES, suite, 'model.safetensors'), BUFFERS[suite]);
  });
});

interface Variant { dir: string; padded_vocab_size: number; hf_weights: string }
const variantsOf = (family: string): Variant[] => JSON.parse(readFileSync(join(BASELINES, family, 'variants.json'), 'utf8')).variants;

describe('Megatron -> HF', () => {
  const gpt = variantsOf('megatron-gpt2');
  it('covers every shipped GPT variant', () => {
    expect(gpt.map((v) => v.dir).sort()).toEqual(['pp2-v3', 'tp1-v0', 'tp1-v1', 'tp1-v3', 'tp1-v3-norm', 'tp2-v3']);
  });

  it.each(gpt.map((v) => [v.dir, v] as const))('%s, trimmed to the NullTokenizer vocabulary, is the HF GPT-2 fixture (1000 rows)', (_dir, v) => {
    const { ckpt, model, values } = readMapped(join(BASELINES, 'megatron-gpt2', v.dir));
    const vocab = megatronVocabSize(ckpt.meta.args as Record<string, unknown>);
    expect(vocab.size).toBe(1000); // README: NullTokenizer, vocab_size = V−1 = 999
    const trimmed = trimVocabulary(values, model, vocab.size as number);
    const map = hfExportMap(model);
    expect(map.name).toBe('hf-gpt2');
    expectSameTensors(asRaw(exportToHf(trimmed.values, trimmed.model, map, hfExportOptions(model, map))), join(BASELINES, 'gpt2', 'model.safetensors'));
  });

  it.each(gpt.map((v) => [v.dir, v] as const))('%s, padded rows kept, is hf_padded_vpad1024', (_dir, v) => {
    const { model, values } = readMapped(join(BASELINES, 'megatron-gpt2', v.dir));
    expect(v.padded_vocab_size).toBe(1024);
    const map = hfExportMap(model);
    expectSameTensors(asRaw(exportToHf(values, model, map, hfExportOptions(model, map))), join(BASELINES, 'megatron-gpt2', v.hf_weights));
  });

  it.each(variantsOf('megatron-bert').map((v) => [v.dir, v] as const))('megatron-bert %s (config from args) is hf_padded_vpad1024 as HF MegatronBert', (_dir, v) => {
    const { ckpt, model, values } = readMapped(join(BASELINES, 'megatron-bert', v.dir));
    // A WordPiece tokenizer's size lives in its vocab file, not the checkpoint: nothing to trim by.
    expect(megatronVocabSize(ckpt.meta.args as Record<string, unknown>).size).toBeNull();
    const map = hfExportMap(model);
    expect(map.name).toBe('hf-megatron-bert');
    expectSameTensors(asRaw(exportToHf(values, model, map, hfExportOptions(model, map))), join(BASELINES, 'megatron-bert', v.hf_weights), BUFFERS['megatron-bert']);
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-written maps: the rules HF files do not exercise.

const toyMap: WeightMap = {
  name: 'toy',
  optionalPrefixes: ['base.'],
  rules: [
    { from: 'blk.{i}.qkv', to: ['L.{i}.q', 'L.{i}.k', 'L.{i}.v'], transform: 'splitColumns3' },
    { from: 'blk.{i}.fc_old', to: 'L.{i}.fc', transform: 'transpose' },
    { from: 'blk.{i}.fc_new', to: 'L.{i}.fc', transform: 'transpose' },
    { from: 'head.w', to: 'head' },
    { from: 'emb_alias', to: null, note: 'alias', tiedTo: 'emb' },
  ],
};

/** Layers 2 and 10 (so a string sort would misorder them); q/k/v [2,2], fc [2,3], head [3]. */
function toyModel(): { model: ExportModel; values: Map<string, Float32Array> } {
  const specs = [2, 10].flatMap((i) => [
    { name: `L.${i}.q`, shape: [2, 2] }, { name: `L.${i}.k`, shape: [2, 2] }, { name: `L.${i}.v`, shape: [2, 2] }, { name: `L.${i}.fc`, shape: [2, 3] },
  ]).concat([{ name: 'head', shape: [3] }]);
  let next = 0;
  const values = new Map(specs.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((a, d) => a * d, 1) }, () => next++)]));
  return { model: { specs, config: {} }, values };
}

describe('exportToHf rules', () => {
  it('writes each layer index present, inverts each transform, and drops aliases', () => {
    const { model, values } = toyModel();
    const out = new Map(exportToHf(values, model, toyMap).map((t) => [t.name, t]));
    expect([...out.keys()].sort()).toEqual(['blk.10.fc_old', 'blk.10.qkv', 'blk.2.fc_old', 'blk.2.qkv', 'head.w']);
    // join columns: row r of qkv = [q row r | k row r | v row r]; L.2.q = 0..3, k = 4..7, v = 8..11
    expect(out.get('blk.2.qkv')).toEqual({ name: 'blk.2.qkv', shape: [2, 6], data: Float32Array.from([0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11]) });
    // transpose back: ours [2,3] = 12..17 -> [3,2]
    expect(out.get('blk.2.fc_old')).toEqual({ name: 'blk.2.fc_old', shape: [3, 2], data: Float32Array.from([12, 15, 13, 16, 14, 17]) });
  });

  it('writes one spelling when a map reads two: the first rule, or the preferred one', () => {
    const { model, values } = toyModel();
    const preferred = exportToHf(values, model, toyMap, { prefer: ['blk.{i}.fc_new'] }).map((t) => t.name);
    expect(preferred).toContain('blk.2.fc_new');
    expect(preferred).not.toContain('blk.2.fc_old');
  });

  it('adds a prefix except to head names', () => {
    const { model, values } = toyModel();
    const names = exportToHf(values, model, toyMap, { prefix: { add: 'base.', except: ['head.'] } }).map((t) => t.name);
    expect(names).toContain('base.blk.10.qkv');
    expect(names).toContain('head.w');
  });

  it('reading the export back with the same map gives the same values (forward ∘ inverse = identity)', () => {
    const { model, values } = toyModel();
    const tensors = exportToHf(values, model, toyMap);
    const ckpt: Checkpoint = { format: 'safetensors', path: 'toy', meta: {}, tensors: new Map(tensors.map((t) => [t.name, inMemoryTensor(t.name, t.shape, t.data, 'toy')])) };
    const back = applyWeightMap(ckpt, toyMap, model.specs);
    expect(isComplete(back.report)).toBe(true);
    expect(back.values).toEqual(values);
  });

  it('refuses to lose a parameter: part of a fused group, or one with no source name', () => {
    const { model, values } = toyModel();
    const partial = new Map(values);
    partial.delete('L.2.k');
    expect(() => exportToHf(partial, model, toyMap)).toThrow(/L\.2\.q.*expected all of L\.\{i\}\.q, L\.\{i\}\.k, L\.\{i\}\.v \(fused into blk\.\{i\}\.qkv\)/s);
    const stray = { specs: [...model.specs, { name: 'extra', shape: [1] }], config: {} };
    expect(() => exportToHf(new Map([...values, ['extra', new Float32Array(1)]]), stray, toyMap)).toThrow(InputError);
    expect(() => exportToHf(new Map([['head', new Float32Array(2)]]), model, toyMap)).toThrow(/tensor "head".*expected \[3\] \(3 values\), got 2 values/);
  });
});

describe('padded vocabulary', () => {
  it('real size: --vocab-size, else NullTokenizer vocab_size + 1, else unknown', () => {
    expect(megatronVocabSize({ tokenizer_type: 'NullTokenizer', vocab_size: 999 }, 1010).size).toBe(1010);
    expect(megatronVocabSize({ tokenizer_type: 'NullTokenizer', vocab_size: 999 }).size).toBe(1000);
    expect(megatronVocabSize({ tokenizer_type: 'GPT2BPETokenizer', vocab_size: null }).size).toBeNull();
    expect(megatronVocabSize(undefined).size).toBeNull();
  });

  it('keeps the first rows of the word embeddings and the LM-head bias only', () => {
    const specs = [{ name: 'embeddings.word', shape: [4, 2] }, { name: 'lm_head.bias', shape: [4] }, { name: 'embeddings.position', shape: [4, 2] }];
    const values = new Map(specs.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((a, d) => a * d, 1) }, (_, k) => k)]));
    const t = trimVocabulary(values, { specs, config: {} }, 3);
    expect(t.values.get('embeddings.word')).toEqual(Float32Array.from([0, 1, 2, 3, 4, 5]));
    expect(t.values.get('lm_head.bias')).toEqual(Float32Array.from([0, 1, 2]));
    expect(t.values.get('embeddings.position')).toBe(values.get('embeddings.position'));
    expect(t.model.specs.map((s) => s.shape)).toEqual([[3, 2], [3], [4, 2]]);
    expect(() => trimVocabulary(values, { specs, config: {} }, 5)).toThrow(/expected 1\.\.4 \(the padded size\), got 5/);
  });
});
