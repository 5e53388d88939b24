/**
 * `align --only forward` on a GPT-2 folder at sizes no shipped suite has (3 layers, 3 heads,
 * hidden 36, vocabulary 211, right padding), against a float64 GPT-2 written from HF's code.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/weightmap/readers/safetensors-writer.ts';
import { gpt2Forward64, gpt2HfShapes, type Gpt2Sizes } from '../support/gpt2-64.ts';
import { rand, size } from '../support/ref64.ts';
import { REPO, TSX, tempDir } from '../support/suite-copy.ts';

const s: Gpt2Sizes = { vocab: 211, hidden: 36, layers: 3, heads: 3, inner: 50, positions: 24 };
const B = 2, T = 9;
const t = tempDir('parity-gpt2-generic-');

beforeAll(() => {
  const W = new Map<string, { shape: number[]; data: number[] }>();
  gpt2HfShapes(s).forEach(([name, shape], i) => {
    const norm = name.includes('ln_') && name.endsWith('weight');
    W.set(name, { shape, data: norm ? rand(size(shape), 300 + i, 0.1).map((v) => Math.fround(1 + v)) : rand(size(shape), 300 + i, name.endsWith('bias') ? 0.02 : 0.1) });
  });
  const ids = rand(B * T, 5).map((v) => Math.floor(((v + 1) / 2) * s.vocab) % s.vocab);
  const mask = Array.from({ length: B * T }, (_, i) => (i >= T + 6 ? 0 : 1));
  const labels = ids.map((id, i) => (mask[i] ? id : -100));
  const ref = gpt2Forward64(s, W, B, T, ids, mask, labels);
  writeFileSync(join(t.dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', vocab_size: s.vocab, n_embd: s.hidden, n_layer: s.layers, n_head: s.heads, n_inner: s.inner, n_positions: s.positions, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 }));
  writeSafetensors(join(t.dir, 'model.safetensors'), [...W].map(([name, v]) => ({ name, dtype: 'F32', shape: v.shape, data: Float32Array.from(v.data) })));
  const ints = (name: string, data: number[]) => ({ name, dtype: 'I32' as const, shape: [B, T], data: Int32Array.from(data) });
  writeSafetensors(join(t.dir, 'eval_inputs.safetensors'), [ints('input_ids', ids), ints('attention_mask', mask), ints('labels', labels)]);
  writeSafetensors(join(t.dir, 'forward_initial.safetensors'), [...ref].map(([name, v]) => ({ name, dtype: 'F32', shape: v.shape, data: Float32Array.from(v.data) })));
});
afterAll(() => t.cleanup());

it('aligns every tensor within 1e-5 (exit 0)', async () => {
  const json = join(t.dir, 'v.json');
  const r = await execa(TSX, ['src/cli/align.ts', t.dir, '--only', 'forward', '--no-report', '--reports', join(t.dir, 'r'), '--json', json], { cwd: REPO, reject: false });
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  const v = JSON.parse(readFileSync(json, 'utf8'));
  expect(v.forward.tensors.length).toBe((s.layers + 1) + s.layers + 2);
  expect(v.forward.maxAbsDiff).toBeLessThanOrEqual(1e-5);
});
