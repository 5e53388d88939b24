/**
 * Recomputing each layer in the backward pass (activation checkpointing) must change memory, never
 * numbers: every gradient bit-identical to the stored-activation backward, on every family, and a
 * lower peak of live tensor bytes.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/backend/select.ts';
import { tf } from '../../src/backend/tf.ts';
import { toBatch, disposeBatch } from '../../src/align/batch-io.ts';
import { loadParams } from '../../src/align/load-model.ts';
import { BatchSource } from '../../src/align/train/batches.ts';
import { modelFromConfig } from '../../src/families/registry.ts';

const BASELINES = join(import.meta.dirname, '../../baselines');

beforeAll(async () => {
  await selectBackend('wasm');
});

async function gradients(suite: string, recompute: boolean): Promise<{ loss: number; grads: Map<string, Float32Array>; peakBytes: number }> {
  const dir = join(BASELINES, suite);
  const model = modelFromConfig(join(dir, 'config.json'));
  const { params } = loadParams(model, join(dir, 'model.safetensors'));
  const batch = toBatch(BatchSource.open(join(dir, 'batches.safetensors'), model.inputNames).at(3));
  try {
    const before = tf.memory().numBytes;
    let result: { value: tf.Scalar; grads: Record<string, tf.Tensor> } | undefined;
    const info = await tf.profile(() => {
      result = tf.variableGrads(() => model.forward(params.get, batch, { taps: false, recompute }).loss as tf.Scalar, params.variables());
      return [result.value, ...Object.values(result.grads)];
    });
    const grads = new Map<string, Float32Array>();
    for (const v of params.variables()) grads.set(v.name.replace(/_\d+$/, ''), Float32Array.from(await result!.grads[v.name].data() as Float32Array));
    const loss = (await result!.value.data())[0];
    result!.value.dispose();
    for (const g of Object.values(result!.grads)) g.dispose();
    return { loss, grads, peakBytes: info.peakBytes - before };
  } finally {
    disposeBatch(batch);
    params.dispose();
  }
}

describe('recomputing layers in the backward pass', () => {
  for (const suite of ['bert', 'gpt2', 't5', 't5v11', 'llama', 'roberta', 'vit']) {
    it(`${suite}: the same loss and bit-identical gradients, with a lower peak of live tensors`, async () => {
      const stored = await gradients(suite, false);
      const recomputed = await gradients(suite, true);
      expect(recomputed.loss).toBe(stored.loss);
      expect([...recomputed.grads.keys()]).toEqual([...stored.grads.keys()]);
      for (const [name, g] of stored.grads) {
        const r = recomputed.grads.get(name)!;
        const differing = g.findIndex((v, i) => !Object.is(v, r[i]));
        expect(differing, `${suite} ${name}: first differing element`).toBe(-1);
      }
      expect(recomputed.peakBytes).toBeLessThan(stored.peakBytes);
    });
  }
});
