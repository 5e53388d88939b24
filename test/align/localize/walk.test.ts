/**
 * The pure parts of the divergence walk: comparing one checkpoint (masks, broadcasting, mask fills,
 * cosine), finding the first divergence, and placing taps by the scope tables. Expected numbers are
 * worked out by hand in each case.
 */
import { describe, expect, it } from 'vitest';
import { compareValues } from '../../../src/align/localize/compare-checkpoint.ts';
import { placeByScope } from '../../../src/align/localize/correspond.ts';
import { locatorFor, ONNX_SCOPE_TABLES } from '../../../src/align/localize/onnx-scopes.ts';
import { findDivergence, splitCheckpointName } from '../../../src/align/localize/walk.ts';
import type { CheckpointComparison } from '../../../src/align/verdict.ts';
import type { OnnxGraph } from '../../../src/weightmap/readers/onnx-graph.ts';

const v = (shape: number[], data: number[]) => ({ shape, data: Float32Array.from(data) });
const MIN = -3.4028234663852886e38;

describe('compareValues', () => {
  it('gives max|diff|, max rel and the cosine of the whole tensor', () => {
    const r = compareValues(v([2, 2], [1, 2, 3, 4.5]), v([2, 2], [1, 2, 3, 4]), 1e-5, 0);
    expect(r.maxAbsDiff).toBe(0.5);
    expect(r.maxRelDiff).toBe(0.125);
    // a·r = 1 + 4 + 9 + 18 = 32; |a|² = 34.25, |r|² = 30.
    expect(r.cosine).toBeCloseTo(32 / Math.sqrt(34.25 * 30), 12);
    expect(r).toMatchObject({ pass: false, compared: 4 });
  });

  it('a scaled value keeps cosine 1 while its |diff| is large; a permuted one does not', () => {
    expect(compareValues(v([3], [2, 4, 6]), v([3], [1, 2, 3]), 1e-5, 0).cosine).toBeCloseTo(1, 12);
    expect(compareValues(v([2], [0, 1]), v([2], [1, 0]), 1e-5, 0).cosine).toBe(0);
  });

  it('skips positions a padding mask marks, on the axis it names', () => {
    // [B=2, T=2, H=1]; row 1 position 1 is padding and holds garbage.
    const mask = { axis: 1, valid: Int32Array.from([1, 1, 1, 0]), positions: 2 };
    const r = compareValues(v([2, 2, 1], [1, 2, 3, 99]), v([2, 2, 1], [1, 2, 3, 4]), 1e-5, 0, [mask]);
    expect(r).toMatchObject({ maxAbsDiff: 0, pass: true, compared: 3 });
  });

  it('holds two mask fills equal (−3.4e38 against −inf), and a fill against a finite score as a fault', () => {
    expect(compareValues(v([3], [MIN, -Infinity, 1]), v([3], [-Infinity, MIN, 1]), 1e-5, 0)).toMatchObject({ maxAbsDiff: 0, pass: true, cosine: 1 });
    const wrongMask = compareValues(v([2], [0.5, 1]), v([2], [MIN, 1]), 1e-5, 0);
    expect(wrongMask.pass).toBe(false);
    expect(wrongMask.maxAbsDiff).toBeGreaterThan(1e38);
  });

  it('broadcasts our size-1 axes over the reference (a [1,…] bias against [B,…])', () => {
    const r = compareValues(v([1, 2], [1, 2]), v([2, 2], [1, 2, 1, 2.5]), 1e-5, 0);
    expect(r).toMatchObject({ maxAbsDiff: 0.5, compared: 4, pass: false });
    expect(compareValues(v([3], [1, 2, 3]), v([2, 2], [1, 2, 3, 4]), 1e-5, 0)).toMatchObject({ pass: false, compared: 0, shapeMismatch: 'ours [3] vs reference [2,2]' });
  });

  it('NaN is never close', () => {
    expect(compareValues(v([1], [Number.NaN]), v([1], [0]), 1, 1)).toMatchObject({ pass: false, maxAbsDiff: Infinity });
  });
});

describe('findDivergence', () => {
  const cp = (name: string, pass: boolean, match: CheckpointComparison['match'] = 'scope'): CheckpointComparison =>
    ({ name, reference: `ref:${name}`, match, note: '', shape: [1], maxAbsDiff: pass ? 1e-7 : 1e-2, maxRelDiff: 0, cosine: 1, atol: 1e-5, rtol: 0, pass, compared: 1 });

  it('names the first failing checkpoint, split into run, layer and sub-block, after the last that passed', () => {
    const d = findDivergence([cp('initial/embeddings', true), cp('initial/layer.1/mlp.fc_in', true), cp('initial/layer.1/mlp.act', false), cp('initial/layer.1/mlp.out', false)]);
    expect(d).toMatchObject({ name: 'initial/layer.1/mlp.act', run: 'initial', layer: 'layer.1', subBlock: 'mlp.act', lastPassing: 'initial/layer.1/mlp.fc_in', reference: 'ref:initial/layer.1/mlp.act', match: 'scope' });
    expect(findDivergence([cp('initial/logits', true)])).toBeNull();
  });

  it('does not take a passing checkpoint of another run as the bound', () => {
    expect(findDivergence([cp('initial/logits', true), cp('final/embeddings', false)])!.lastPassing).toBeNull();
  });

  it.each([
    ['initial/encoder/layer.0/attn.scores', { run: 'initial', layer: 'encoder/layer.0', subBlock: 'attn.scores' }],
    ['initial/encoder/position_bias', { run: 'initial', layer: 'encoder', subBlock: 'position_bias' }],
    ['final/logits', { run: 'final', layer: null, subBlock: 'logits' }],
  ])('splits %s', (name, parts) => expect(splitCheckpointName(name)).toEqual(parts));
});

describe('scope tables', () => {
  it('fill {i} in the pattern that matches a concrete tap name', () => {
    expect(locatorFor(ONNX_SCOPE_TABLES.bert, 'layer.11/attn.scores')).toEqual({ node: '/bert/encoder/layer.11/attention/self/Softmax', input: 0 });
    expect(locatorFor(ONNX_SCOPE_TABLES.t5, 'decoder/layer.3/cross.out')).toEqual({ scope: '/decoder/block.3/layer.1/EncDecAttention/o' });
    expect(locatorFor(ONNX_SCOPE_TABLES.gpt2, 'attention_bias')).toBeNull();
    expect(locatorFor(ONNX_SCOPE_TABLES.gpt2, 'layer.x/attn.scores')).toBeUndefined();
    expect(locatorFor(undefined, 'logits')).toBeUndefined();
  });

  // A hand-made graph: two nodes in one module, a Constant last in it, and a graph output.
  const node = (name: string, opType: string, inputs: string[], outputs: string[]) => ({ name, opType, domain: '', inputs, outputs });
  const graph = {
    nodes: [
      node('/m/dense/MatMul', 'MatMul', ['x', 'w'], ['/m/dense/MatMul_output_0']),
      node('/m/dense/Add', 'Add', ['b', '/m/dense/MatMul_output_0'], ['/m/dense/Add_output_0']),
      node('/m/dense/Constant', 'Constant', [], ['/m/dense/Constant_output_0']),
      node('/m/Softmax', 'Softmax', ['/m/dense/Add_output_0'], ['probs']),
    ],
    outputs: [{ name: 'probs', elemType: 1 }],
  } as unknown as OnnxGraph;
  const table = { exporter: 'test', taps: { 'dense': { scope: '/m/dense' }, 'scores': { node: '/m/Softmax', input: 0 }, 'probs': { output: 'probs' }, 'gone': { scope: '/absent' }, 'none': null } };

  it('place a module by its last non-Constant node, a node input, and a named value', () => {
    expect(placeByScope([graph], table, 'dense')).toMatchObject({ graph: 0, value: '/m/dense/Add_output_0', by: 'scope' });
    expect(placeByScope([graph], table, 'scores')).toMatchObject({ value: '/m/dense/Add_output_0', by: 'scope', note: 'input 0 of node /m/Softmax' });
    expect(placeByScope([graph], table, 'probs')).toMatchObject({ value: 'probs', by: 'output' });
    expect(placeByScope([graph, graph], table, 'probs')!.graph).toBe(0);
  });

  it('leave a tap unplaced when its scope is absent, and say so when the table rules it out', () => {
    expect(placeByScope([graph], table, 'gone')).toBeUndefined();
    expect(placeByScope([graph], table, 'unlisted')).toBeUndefined();
    expect(placeByScope([graph], table, 'none')).toBeNull();
  });
});
