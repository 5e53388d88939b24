/**
 * The ONNX graph reader. Oracles: the baseline READMEs' "### `x.onnx` (…, N nodes)" headers and
 * their input/output tables (names, int64 ids and masks, float hidden states).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ONNX_FLOAT, ONNX_INT64, readOnnxGraph, withExtraOutputs } from '../../../src/weightmap/readers/onnx-graph.ts';
import { BASELINES } from '../../support/backend.ts';
import { tempDir } from '../../support/suite-copy.ts';

interface Documented { file: string; nodes: number; inputs: Array<[string, string]>; outputs: string[] }

function documented(suite: string): Documented[] {
  const readme = readFileSync(join(BASELINES, suite, 'README.md'), 'utf8');
  return readme.split(/^(?=### )/m).flatMap((section) => {
    const head = /^### `([^`]+\.onnx)` \([^)]*, (\d+) nodes\)/.exec(section);
    if (!head) return [];
    const rows = [...section.matchAll(/^\| (input|output) \| `([^`]+)` \| (\w+) \|/gm)];
    return [{
      file: join(BASELINES, suite, head[1]),
      nodes: Number(head[2]),
      inputs: rows.filter((r) => r[1] === 'input').map((r) => [r[2], r[3]] as [string, string]),
      outputs: rows.filter((r) => r[1] === 'output').map((r) => r[2]),
    }];
  });
}

const docs = ['bert', 'gpt2', 't5'].flatMap(documented);

describe('readOnnxGraph on the baseline exports', () => {
  it('finds the four documented graphs', () => expect(docs).toHaveLength(4));

  it.each(docs.map((d) => [d.file.slice(BASELINES.length), d] as const))('%s: node count, typed inputs and outputs as documented', (_, d) => {
    const g = readOnnxGraph(d.file);
    expect(g.nodes).toHaveLength(d.nodes);
    expect(g.inputs.map((i) => [i.name, i.elemType === ONNX_INT64 ? 'int64' : i.elemType === ONNX_FLOAT ? 'float' : String(i.elemType)])).toEqual(d.inputs);
    expect(g.outputs.map((o) => o.name)).toEqual(d.outputs);
    // Names by module scope, as the READMEs describe.
    expect(g.nodes.some((n) => n.name.endsWith('/Softmax') && n.name.startsWith('/'))).toBe(true);
  });
});

describe('withExtraOutputs', () => {
  it('appends outputs that a reader sees merged into the one graph, leaving every original byte in place', () => {
    const file = docs[0].file;
    const bytes = readFileSync(file);
    const extended = withExtraOutputs(bytes, ['/bert/encoder/layer.0/attention/self/Softmax_output_0', 'hidden_states.0']);
    expect(extended.subarray(0, bytes.length).equals(bytes)).toBe(true);
    const t = tempDir('parity-onnx-graph-');
    try {
      const path = join(t.dir, 'x.onnx');
      writeFileSync(path, extended);
      const g = readOnnxGraph(path);
      expect(g.outputs.map((o) => o.name)).toEqual([...docs[0].outputs, '/bert/encoder/layer.0/attention/self/Softmax_output_0', 'hidden_states.0']);
      expect(g.outputs.at(-1)!.elemType).toBeNull();
      expect(g.nodes).toHaveLength(docs[0].nodes);
    } finally {
      t.cleanup();
    }
  });
});
