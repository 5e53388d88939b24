/**
 * `align --only forward` on LLaMA, RoBERTa and ViT folders at sizes no shipped suite has — other
 * head counts and key/value-head ratios (grouped, multi-query, tied head, another θ), another
 * padding id and token types, non-square images and patches — against float64 forwards written
 * from HF's modeling code in test/support, not from Parity.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors, type TensorToWrite } from '../../src/weightmap/readers/safetensors-writer.ts';
import { float16Bytes } from '../support/float16.ts';
import { llamaForward64, llamaHfShapes, type LlamaSizes } from '../support/llama64.ts';
import { geluTanh, rand, size } from '../support/ref64.ts';
import { robertaForward64, robertaHfShapes, type RobertaSizes } from '../support/roberta64.ts';
import { REPO, TSX, tempDir } from '../support/suite-copy.ts';
import { vitForward64, vitHfShapes, vitTokens, type VitSizes } from '../support/vit64.ts';

type Tensors64 = Map<string, { shape: number[]; data: number[] }>;

const dirs: Array<() => void> = [];
afterAll(() => dirs.forEach((cleanup) => cleanup()));

/** Random HF-named weights; norm weights near 1 so activations keep a useful scale. */
function weights(shapes: Array<[string, number[]]>, seed: number, isNormWeight: (name: string) => boolean): Tensors64 {
  const W: Tensors64 = new Map();
  shapes.forEach(([name, shape], i) => {
    const data = isNormWeight(name) ? rand(size(shape), seed + i, 0.1).map((v) => Math.fround(1 + v)) : rand(size(shape), seed + i, name.endsWith('bias') ? 0.02 : 0.1);
    W.set(name, { shape, data });
  });
  return W;
}

const f32 = (m: Tensors64): TensorToWrite[] => [...m].map(([name, v]) => ({ name, dtype: 'F32', shape: v.shape, data: Float32Array.from(v.data) }));
const i32 = (name: string, shape: number[], data: number[]): TensorToWrite => ({ name, dtype: 'I32', shape, data: Int32Array.from(data) });

/** Writes a suite folder and runs `align --only forward` on it. */
async function alignFolder(prefix: string, config: object, W: Tensors64, inputs: TensorToWrite[], reference: Tensors64) {
  const t = tempDir(prefix);
  dirs.push(t.cleanup);
  writeFileSync(join(t.dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(join(t.dir, 'model.safetensors'), f32(W));
  writeSafetensors(join(t.dir, 'eval_inputs.safetensors'), inputs);
  writeSafetensors(join(t.dir, 'forward_initial.safetensors'), f32(reference));
  const json = join(t.dir, 'v.json');
  const r = await execa(TSX, ['src/cli/align.ts', t.dir, '--only', 'forward', '--no-report', '--reports', join(t.dir, 'r'), '--json', json], { cwd: REPO, reject: false });
  return { r, verdict: r.exitCode === 2 ? null : JSON.parse(readFileSync(json, 'utf8')) };
}

const B = 2;

describe.concurrent('LLaMA at other sizes', () => {
  const cases: Array<[string, LlamaSizes]> = [
    ['6 heads sharing 2 key/value heads, θ 500000, untied head', { vocab: 97, hidden: 48, layers: 2, heads: 6, kvHeads: 2, inter: 40, eps: 1e-5, theta: 500000, tied: false }],
    ['4 heads sharing 1 key/value head (multi-query), tied head', { vocab: 83, hidden: 32, layers: 3, heads: 4, kvHeads: 1, inter: 24, eps: 1e-6, theta: 10000, tied: true }],
  ];
  it.each(cases)('%s aligns every tensor within 1e-5 (exit 0)', async (_label, s) => {
    const T = 9;
    const W = weights(llamaHfShapes(s), 400 + s.heads, (n) => n.endsWith('layernorm.weight') || n === 'model.norm.weight');
    const ids = rand(B * T, 8).map((v) => Math.floor(((v + 1) / 2) * s.vocab) % s.vocab);
    const mask = Array.from({ length: B * T }, (_, i) => (i >= T + 6 ? 0 : 1)); // row 1 right-padded
    const labels = ids.map((id, i) => (mask[i] ? id : -100));
    const config = {
      model_type: 'llama', vocab_size: s.vocab, hidden_size: s.hidden, num_hidden_layers: s.layers, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads,
      intermediate_size: s.inter, rms_norm_eps: s.eps, rope_theta: s.theta, tie_word_embeddings: s.tied, max_position_embeddings: 16, hidden_act: 'silu', rope_scaling: null,
    };
    const { r, verdict } = await alignFolder('parity-llama-generic-', config, W, [i32('input_ids', [B, T], ids), i32('attention_mask', [B, T], mask), i32('labels', [B, T], labels)], llamaForward64(s, W, B, T, ids, mask, labels));
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(verdict.forward.tensors.length).toBe((s.layers + 1) + s.layers + 2);
    expect(verdict.forward.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(verdict.model).toBe('llama');
  });
});

describe.concurrent('RoBERTa at other sizes', () => {
  it('3 heads, padding id 0, a left-padded row, two token types, tanh-GELU encoder (the head stays exact GELU) align within 1e-5 (exit 0)', async () => {
    const s: RobertaSizes = { vocab: 89, hidden: 36, layers: 2, heads: 3, inter: 50, maxPos: 12, typeVocab: 2, eps: 1e-5, pad: 0, act: geluTanh };
    const T = 8;
    const W = weights(robertaHfShapes(s), 500, (n) => /LayerNorm\.weight$|layer_norm\.weight$/.test(n));
    // Row 1 is left-padded: its real tokens sit at positions pad+1, pad+2, … from the first real one, not at their index.
    const mask = Array.from({ length: B * T }, (_, i) => (i >= T && i < T + 3 ? 0 : 1));
    const ids = rand(B * T, 9).map((v, i) => (mask[i] ? 1 + (Math.floor(((v + 1) / 2) * (s.vocab - 1)) % (s.vocab - 1)) : s.pad));
    const tokenTypes = Array.from({ length: B * T }, (_, i) => (i % T >= 4 ? 1 : 0));
    const labels = ids.map((id, i) => (mask[i] && i % 3 === 1 ? id : -100));
    const config = {
      model_type: 'roberta', vocab_size: s.vocab, hidden_size: s.hidden, num_hidden_layers: s.layers, num_attention_heads: s.heads, intermediate_size: s.inter,
      max_position_embeddings: s.maxPos, type_vocab_size: s.typeVocab, layer_norm_eps: s.eps, pad_token_id: s.pad, hidden_act: 'gelu_new',
    };
    const inputs = [i32('input_ids', [B, T], ids), i32('token_type_ids', [B, T], tokenTypes), i32('attention_mask', [B, T], mask), i32('labels', [B, T], labels)];
    const { r, verdict } = await alignFolder('parity-roberta-generic-', config, W, inputs, robertaForward64(s, W, B, T, ids, tokenTypes, mask, labels));
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(verdict.forward.tensors.length).toBe((s.layers + 1) + s.layers + 2);
    expect(verdict.forward.maxAbsDiff).toBeLessThanOrEqual(1e-5);
  });
});

describe.concurrent('ViT at other sizes', () => {
  const cases: Array<[string, VitSizes, (s: VitSizes) => object]> = [
    ['a 12×8 two-channel image in 4×2 patches, 3 heads, 5 labels', { image: [12, 8], patch: [4, 2], channels: 2, hidden: 24, layers: 2, heads: 3, inter: 40, eps: 1e-6, labels: 5 }, (s) => ({ image_size: s.image, patch_size: s.patch })],
    ['an 8×8 image in 2×2 patches, 2 heads, 3 labels, one layer', { image: [8, 8], patch: [2, 2], channels: 3, hidden: 16, layers: 1, heads: 2, inter: 20, eps: 1e-12, labels: 3 }, (s) => ({ image_size: s.image[0], patch_size: s.patch[0] })],
  ];
  it.each(cases)('%s aligns every tensor within 1e-5 (exit 0), pixels read from float16', async (_label, s, geometry) => {
    const W = weights(vitHfShapes(s), 600 + s.hidden, (n) => /layernorm(_before|_after)?\.weight$/.test(n));
    const n = B * s.channels * s.image[0] * s.image[1];
    const pixels = rand(n, 10).map((v) => Math.round((v + 1) * 128) / 128 - 1); // k/128 − 1, exact in float16
    const labels = [1, s.labels - 1];
    const config = {
      model_type: 'vit', hidden_size: s.hidden, num_hidden_layers: s.layers, num_attention_heads: s.heads, intermediate_size: s.inter, num_channels: s.channels,
      layer_norm_eps: s.eps, hidden_act: 'gelu', qkv_bias: true, id2label: Object.fromEntries(Array.from({ length: s.labels }, (_, i) => [String(i), `L${i}`])), ...geometry(s),
    };
    const inputs: TensorToWrite[] = [{ name: 'pixel_values', dtype: 'F16', shape: [B, s.channels, ...s.image], data: float16Bytes(pixels) }, i32('labels', [B], labels)];
    const { r, verdict } = await alignFolder('parity-vit-generic-', config, W, inputs, vitForward64(s, W, B, pixels, labels));
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(verdict.forward.tensors.length).toBe((s.layers + 1) + s.layers + 3);
    expect(verdict.forward.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(vitTokens(s)).toBe(verdict.forward.tensors.find((t: { name: string }) => t.name === 'initial/hidden_states.0').shape[1]);
  });
});
