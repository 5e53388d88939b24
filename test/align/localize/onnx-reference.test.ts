/**
 * Forward parity against a live ONNX reference (onnxruntime-node running the baseline exports) and
 * the sub-block walk it makes possible. Oracles: the exports and the stored PyTorch forwards, both
 * made by HF/PyTorch (baselines/<suite>/README.md); nothing here compares us with ourselves.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { checkForward } from '../../../src/align/forward-check.ts';
import { forwardValues } from '../../../src/align/forward-run.ts';
import { readInputs } from '../../../src/align/batch-io.ts';
import { loadParams } from '../../../src/align/load-model.ts';
import { modelFromConfig } from '../../../src/families/registry.ts';
import { tf } from '../../../src/backend/tf.ts';
import { readSafetensors } from '../../../src/weightmap/readers/safetensors.ts';
import { BASELINES, useBackend } from '../../support/backend.ts';
import { onnxFiles, onnxRun, storedRun } from '../../support/onnx-suites.ts';

beforeAll(useBackend);

const f = (suite: string, file: string) => `${BASELINES}${suite}/${file}`;
const TOL = { atol: 1e-5, rtol: 0 };

// Taps each family's table places, by count, for these 2-layer models: per layer 10 (norm, scores,
// probs, projection, residual per sublayer; fc_in, act, out for the MLP), 5 more for T5's
// cross-attention; GPT-2's combined mask has no counterpart in its export.
const L = 2;
const PLACED = { bert: 3 + 10 * L + 6, gpt2: 1 + 10 * L + 2, t5: 3 + 10 * L + 3 + 15 * L + 1 };

describe.each(['bert', 'gpt2', 't5'] as const)('%s against its ONNX export run by onnxruntime', (suite) => {
  it('every sub-block checkpoint aligns within 1e-5, each placed by name or module scope', async () => {
    const model = modelFromConfig(f(suite, 'config.json'));
    const v = await checkForward(model, f(suite, 'eval_inputs.safetensors'), [onnxRun(suite)], TOL);
    expect(v.reference).toMatchObject({ kind: 'onnx', files: onnxFiles(suite), runtime: { name: 'onnxruntime-node', threads: 1, optimization: 'disabled' } });
    expect(v.checkpoints).toHaveLength(PLACED[suite]);
    for (const c of v.checkpoints!) {
      expect(c.maxAbsDiff, c.name).toBeLessThanOrEqual(1e-5);
      expect(c.pass, c.name).toBe(true);
      expect(['scope', 'output'], c.name).toContain(c.match);
      expect(c.cosine, c.name).toBeGreaterThan(0.999999);
    }
    expect(v.tensors.length).toBeGreaterThan(0);
    for (const t of v.tensors) expect(t.maxAbsDiff, t.name).toBeLessThanOrEqual(1e-5);
    expect(v.divergence).toBeNull();
    expect(v.firstDivergence).toBeNull();
    expect(v.pass).toBe(true);
  });

  it('gives the verdict the stored PyTorch tensors give, on every tensor both have', async () => {
    const model = modelFromConfig(f(suite, 'config.json'));
    const live = await checkForward(model, f(suite, 'eval_inputs.safetensors'), [onnxRun(suite)], TOL);
    const stored = await checkForward(model, f(suite, 'eval_inputs.safetensors'), [storedRun(suite)], TOL);
    expect({ pass: live.pass, firstDivergence: live.firstDivergence }).toEqual({ pass: stored.pass, firstDivergence: stored.firstDivergence });
    // Every layer output and attention map the stored forward has, the live one has too (losses aside: the graphs end at the logits).
    const storedNames = stored.tensors.map((t) => t.name).filter((n) => !/loss$/.test(n));
    expect(live.tensors.map((t) => t.name).sort()).toEqual(storedNames.sort());
    for (const t of live.tensors) expect(t.pass, t.name).toBe(stored.tensors.find((s) => s.name === t.name)!.pass);
  });
});

describe('matching by value when no scope table places the taps', () => {
  it('finds, for every BERT tap, a graph value equal to the one the module scope names, and marks each as a guess that does not gate', async () => {
    const model = modelFromConfig(f('bert', 'config.json'));
    const byScope = await checkForward(model, f('bert', 'eval_inputs.safetensors'), [onnxRun('bert')], TOL);
    const byValue = await checkForward(model, f('bert', 'eval_inputs.safetensors'), [onnxRun('bert')], TOL, { scopeTable: null });
    expect(byValue.checkpoints!.map((c) => c.name)).toEqual(byScope.checkpoints!.map((c) => c.name));
    for (const c of byValue.checkpoints!) {
      const scoped = byScope.checkpoints!.find((s) => s.name === c.name)!;
      expect(c.match, c.name).toBe('value');
      expect(c.note, c.name).toMatch(/^by value: closest of \d+ same-shape candidates/);
      // The same reference value, or one equal to it (at initialisation a bias is 0, so MatMul and its Add tie).
      expect(c.maxAbsDiff, c.name).toBe(scoped.maxAbsDiff);
    }
    // Where no neutral parameter makes two values equal, the very value the scope names is found.
    for (const c of byValue.checkpoints!.filter((x) => /attn\.(scores|probs)|mlp\.act|mlp_norm|logits/.test(x.name))) {
      expect(c.reference, c.name).toBe(byScope.checkpoints!.find((s) => s.name === c.name)!.reference);
    }
  });
});

describe('the taps', () => {
  it('change nothing: outputs with a pass-through sink are bit-identical to outputs without one, and no tensor leaks', async () => {
    const model = modelFromConfig(f('t5', 'config.json'));
    const inputs = readInputs(readSafetensors(f('t5', 'eval_inputs.safetensors')));
    const { params } = loadParams(model, f('t5', 'model.safetensors'));
    const before = tf.memory().numTensors;
    const plain = await forwardValues(model, params.get, inputs, {}, false);
    const tapped = await forwardValues(model, params.get, inputs, {}, true);
    expect(tf.memory().numTensors).toBe(before);
    params.dispose();
    expect(plain.taps.size).toBe(0);
    expect(tapped.taps.size).toBeGreaterThan(50);
    for (const [name, v] of plain.outputs) expect(Buffer.from(tapped.outputs.get(name)!.data.buffer).equals(Buffer.from(v.data.buffer)), name).toBe(true);
    // Model order: the encoder before the decoder, each layer's norm before its attention before its MLP.
    const names = [...tapped.taps.keys()];
    expect(names.slice(0, 6)).toEqual(['encoder/embeddings', 'encoder/position_bias', 'encoder/layer.0/attn_norm', 'encoder/layer.0/attn.scores', 'encoder/layer.0/attn.probs', 'encoder/layer.0/attn.out']);
    expect(names.indexOf('decoder/layer.0/cross.scores')).toBeGreaterThan(names.indexOf('decoder/layer.0/attn.residual'));
    expect(names.at(-1)).toBe('logits');
    // A stored tensor and a tap that are one tensor are paired by identity.
    expect(tapped.outputTaps.get('encoder_hidden_states.1')).toBe('encoder/layer.0/mlp.residual');
    expect(tapped.outputTaps.get('cross_attentions.1')).toBe('decoder/layer.1/cross.probs');
  });
});
