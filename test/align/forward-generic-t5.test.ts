/**
 * `align --only forward` on T5 folders at sizes no shipped suite has — heads·d_kv ≠ d_model,
 * 2 encoder and 3 decoder layers, 16 buckets with max distance 20, v1.0 (ReLU, tied head with the
 * d_model^−½ rescale) and v1.1 (gated GELU, untied) — against a float64 T5 from HF's code.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/weightmap/readers/safetensors-writer.ts';
import { t5Forward64, t5HfShapes, type T5Sizes } from '../support/t5-64.ts';
import { rand, size } from '../support/ref64.ts';
import { REPO, TSX, tempDir } from '../support/suite-copy.ts';

const t = tempDir('parity-t5-generic-');
afterAll(() => t.cleanup());

function makeSuite(name: string, s: T5Sizes): string {
  const dir = join(t.dir, name);
  const B = 2, Te = 11, Td = 6;
  const W = new Map<string, { shape: number[]; data: number[] }>();
  t5HfShapes(s).forEach(([n, shape], i) => {
    const norm = n.includes('layer_norm');
    W.set(n, { shape, data: norm ? rand(size(shape), 500 + i, 0.1).map((v) => Math.fround(1 + v)) : rand(size(shape), 500 + i, n.includes('relative') ? 0.5 : 0.2) });
  });
  const ids = rand(B * Te, 8).map((v) => 2 + (Math.floor(((v + 1) / 2) * 1000) % (s.vocab - 2)));
  const mask = Array.from({ length: B * Te }, (_, i) => (i >= Te + 8 ? 0 : 1));
  const labels = rand(B * Td, 9).map((v, i) => (i === Td * 2 - 1 ? -100 : 2 + (Math.floor(((v + 1) / 2) * 1000) % (s.vocab - 2))));
  const decIds = labels.map((_, i) => (i % Td === 0 ? 0 : Math.max(0, labels[i - 1])));
  const ref = t5Forward64(s, W, B, Te, Td, ids, mask, decIds, labels);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    model_type: 't5', vocab_size: s.vocab, d_model: s.dModel, d_kv: s.dKv, d_ff: s.dFf, num_heads: s.heads, num_layers: s.encLayers, num_decoder_layers: s.decLayers,
    relative_attention_num_buckets: s.buckets, relative_attention_max_distance: s.maxDistance, feed_forward_proj: s.gated ? 'gated-gelu' : 'relu', tie_word_embeddings: s.tied, layer_norm_epsilon: 1e-6,
  }));
  writeSafetensors(join(dir, 'model.safetensors'), [...W].map(([n, v]) => ({ name: n, dtype: 'F32', shape: v.shape, data: Float32Array.from(v.data) })));
  const ints = (n: string, shape: number[], data: number[]) => ({ name: n, dtype: 'I32' as const, shape, data: Int32Array.from(data) });
  writeSafetensors(join(dir, 'eval_inputs.safetensors'), [ints('input_ids', [B, Te], ids), ints('attention_mask', [B, Te], mask), ints('decoder_input_ids', [B, Td], decIds), ints('labels', [B, Td], labels)]);
  writeSafetensors(join(dir, 'forward_initial.safetensors'), [...ref].map(([n, v]) => ({ name: n, dtype: 'F32', shape: v.shape, data: Float32Array.from(v.data) })));
  return dir;
}

const base: T5Sizes = { vocab: 97, dModel: 40, dKv: 6, dFf: 24, heads: 5, encLayers: 2, decLayers: 3, buckets: 16, maxDistance: 20, gated: false, tied: true };

describe.each([
  ['v1.0', { ...base }],
  ['v1.1', { ...base, gated: true, tied: false }],
])('T5 %s at other sizes', (name, sizes) => {
  it('aligns every tensor within 1e-5 (exit 0)', async () => {
    const dir = makeSuite(name, sizes);
    const json = join(dir, 'v.json');
    const r = await execa(TSX, ['src/cli/align.ts', dir, '--only', 'forward', '--no-report', '--reports', join(dir, 'r'), '--json', json], { cwd: REPO, reject: false });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const v = JSON.parse(readFileSync(json, 'utf8'));
    expect(v.forward.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    // encoder: hidden states, attentions, last hidden state; decoder: hidden states, self and cross attentions; logits, loss
    expect(v.forward.tensors.length).toBe((2 * sizes.encLayers + 2) + (3 * sizes.decLayers + 1) + 2);
  });
});
