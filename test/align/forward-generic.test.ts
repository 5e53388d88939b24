/**
 * `align --only forward` on a fixture-shaped folder at sizes no shipped suite has: 3 layers,
 * 6 heads, hidden 48, vocabulary 301. The reference tensors come from a float64 BERT written from
 * HF's modeling code (test/support/bert64.ts), not from Parity.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/weightmap/readers/safetensors-writer.ts';
import { bertForward64, bertHfShapes, type BertSizes } from '../support/bert64.ts';
import { rand, size } from '../support/ref64.ts';
import { REPO, TSX, tempDir } from '../support/suite-copy.ts';

const sizes: BertSizes = { vocab: 301, hidden: 48, layers: 3, heads: 6, inter: 96, maxPos: 40, eps: 1e-12 };
const B = 3, T = 11;
const t = tempDir('parity-bert-generic-');
let referenceFile = '';

beforeAll(() => {
  const weights = new Map<string, { shape: number[]; data: number[] }>();
  bertHfShapes(sizes).forEach(([name, shape], i) => {
    const isNorm = name.includes('LayerNorm');
    const data = isNorm && name.endsWith('weight') ? rand(size(shape), 100 + i, 0.1).map((v) => Math.fround(1 + v)) : rand(size(shape), 100 + i, name.endsWith('bias') ? 0.02 : 0.08);
    weights.set(name, { shape, data });
  });
  const inputIds = rand(B * T, 7).map((v) => Math.floor(((v + 1) / 2) * (sizes.vocab - 4)) + 4);
  const mask = Array.from({ length: B * T }, (_, i) => (i >= 2 * T + 7 ? 0 : 1)); // last row padded after 7 tokens
  const tokenTypes = Array.from({ length: B * T }, (_, i) => (i % T >= 5 ? 1 : 0));
  const labels = inputIds.map((id, i) => (i % 4 === 1 && mask[i] ? id : -100));
  const nsp = [0, 1, 0];
  const inputs = { batch: B, seq: T, inputIds, tokenTypes, mask, labels, nsp };
  const ref = bertForward64(sizes, weights, inputs);

  writeFileSync(join(t.dir, 'config.json'), JSON.stringify({
    model_type: 'bert', vocab_size: sizes.vocab, hidden_size: sizes.hidden, num_hidden_layers: sizes.layers, num_attention_heads: sizes.heads,
    intermediate_size: sizes.inter, max_position_embeddings: sizes.maxPos, type_vocab_size: 2, layer_norm_eps: sizes.eps, hidden_act: 'gelu',
  }));
  writeSafetensors(join(t.dir, 'model.safetensors'), [...weights].map(([name, w]) => ({ name, dtype: 'F32', shape: w.shape, data: Float32Array.from(w.data) })));
  const ints = (name: string, shape: number[], data: number[]) => ({ name, dtype: 'I32' as const, shape, data: Int32Array.from(data) });
  writeSafetensors(join(t.dir, 'eval_inputs.safetensors'), [
    ints('input_ids', [B, T], inputIds), ints('token_type_ids', [B, T], tokenTypes), ints('attention_mask', [B, T], mask), ints('labels', [B, T], labels), ints('next_sentence_label', [B], nsp),
  ]);
  referenceFile = join(t.dir, 'forward_initial.safetensors');
  writeSafetensors(referenceFile, [...ref].map(([name, v]) => ({ name, dtype: 'F32', shape: v.shape, data: Float32Array.from(v.data) })));
});

afterAll(() => t.cleanup());

const align = (...args: string[]) => execa(TSX, ['src/cli/align.ts', t.dir, '--only', 'forward', '--no-report', '--reports', join(t.dir, 'reports'), ...args], { cwd: REPO, reject: false });

describe('forward check on other sizes', () => {
  it('aligns (exit 0) with every tensor within 1e-5 of the float64 reference', async () => {
    const out = join(t.dir, 'verdict.json');
    const r = await align('--json', out);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const v = JSON.parse(readFileSync(out, 'utf8'));
    expect(v.forward.tensors.length).toBe((sizes.layers + 1) + sizes.layers + 2 + 3); // hidden states, attentions, two logits, three losses
    expect(v.forward.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(v.forward.firstDivergence).toBeNull();
    expect(v).toMatchObject({ suite: expect.any(String), model: 'bert', backend: expect.any(String), pass: true, forward: { pass: true } });
  });

  it('a reference that disagrees at layer 2 exits 1 and names that layer first', async () => {
    const { readSafetensors } = await import('../../src/weightmap/readers/safetensors.ts');
    const ref = readSafetensors(referenceFile);
    const tensors = [...ref.tensors.values()].map((r) => {
      const data = Float32Array.from(r.toFloat32());
      if (r.name === 'hidden_states.2') data[5] += 1e-3;
      return { name: r.name, dtype: 'F32' as const, shape: [...r.shape], data };
    });
    writeSafetensors(referenceFile, tensors);
    const out = join(t.dir, 'verdict-bad.json');
    const r = await align('--json', out);
    expect(r.exitCode).toBe(1);
    const v = JSON.parse(readFileSync(out, 'utf8'));
    // hidden_states.2 is layer 1's output, its final norm in post-LN BERT; layer 1's attention map still agrees.
    expect(v.forward.firstDivergence).toBe('initial/layer.1/mlp_norm');
    expect(v.forward.divergence).toMatchObject({ reference: 'hidden_states.2', lastPassing: 'initial/layer.1/attn.probs' });
    expect(r.stdout).toContain('first divergence: initial/layer.1/mlp_norm');
  });
});
