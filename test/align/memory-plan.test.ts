/**
 * The training memory plan: widths and tokens read off the model and one batch, a run that does not
 * fit refused before any weight is read (exit 2, with the estimate and what would fit), and layers
 * recomputed when only that fits.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchSource } from '../../src/align/train/batches.ts';
import { estimateTraining, fits, modelShape, planTraining, WASM_HEAP_LIMIT, type ModelShape } from '../../src/align/train/memory-plan.ts';
import { InputError } from '../../src/errors.ts';
import { modelFromConfig } from '../../src/families/registry.ts';
import { copySuite, REPO, TSX, tempDir } from '../support/suite-copy.ts';

const work = tempDir('parity-memory-');
afterAll(() => work.cleanup());
const BASELINES = join(REPO, 'baselines');

describe('modelShape', () => {
  it('reads GPT-2 widths off its parameters and tokens off a training batch (8 rows × 32)', () => {
    const model = modelFromConfig(join(BASELINES, 'gpt2/config.json'));
    const batch = BatchSource.open(join(BASELINES, 'gpt2/batches.safetensors'), model.inputNames).at(0);
    const s = modelShape(model, batch);
    expect(s).toMatchObject({ layers: 2, hidden: 64, ffn: 256, heads: 4, classes: 1000, tokens: 256, keys: 32 });
    expect(s.params).toBe(model.specs.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0));
  });

  it('counts T5 encoder and decoder layers and both sides\' tokens', () => {
    const model = modelFromConfig(join(BASELINES, 't5/config.json'));
    const batch = BatchSource.open(join(BASELINES, 't5/batches.safetensors'), model.inputNames).at(0);
    const s = modelShape(model, batch);
    expect(s.layers).toBe(4);
    const [rows, enc] = batch.input_ids.shape;
    expect(s.tokens).toBe(rows * (enc + batch.labels.shape[1]));
  });
});

describe('planTraining', () => {
  // 100M parameters, 48 layers of width 1024 over 4096 tokens: stored activations exceed the wasm heap.
  const deep: ModelShape = { params: 100e6, largestParam: 4e6, layers: 48, hidden: 1024, ffn: 4096, heads: 16, classes: 1000, tokens: 2048, keys: 128 };

  it('recomputes layers when only that fits, and says so', () => {
    expect(fits(estimateTraining(deep, 'wasm', 'host', false))).toBe(false);
    const plan = planTraining(deep, 'wasm', 'host', false, 'model.safetensors');
    expect(plan.recompute).toBe(true);
    expect(plan.device).toBeLessThanOrEqual(0.9 * WASM_HEAP_LIMIT);
  });

  it('keeps activations when they fit, unless asked to recompute', () => {
    const small: ModelShape = { ...deep, layers: 2, tokens: 256 };
    expect(planTraining(small, 'wasm', 'host', false, 'f').recompute).toBe(false);
    expect(planTraining(small, 'wasm', 'host', true, 'f').recompute).toBe(true);
  });

  it('refuses what fits in neither way with an InputError naming the file, the parts and the way out', () => {
    const huge: ModelShape = { ...deep, params: 2e9 };
    let error: unknown;
    try {
      planTraining(huge, 'wasm', 'host', false, 'model.safetensors');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    const message = (error as Error).message;
    expect(message).toContain('model.safetensors');
    expect(message).toMatch(/parameters 7\.45 GiB \+ gradients 7\.45 GiB \+ activations ~[\d.]+ GiB \(layers recomputed\)/);
    expect(message).toContain('limit 4.00 GiB');
    expect(message).toMatch(/a GPU backend \(--backend webgpu or tensorflow-gpu\)/);
    expect(message).toMatch(/a smaller batch/);
  });

  it('puts Adam\'s moments on the device with the device optimizer, and on the host otherwise', () => {
    const host = estimateTraining(deep, 'wasm', 'host', true);
    const device = estimateTraining(deep, 'wasm', 'device', true);
    // The moments, and the update's copies of the largest parameter.
    expect(device.device - host.device).toBe(2 * 4 * deep.params + 5 * 4 * deep.largestParam);
    expect(host.host).toBe(2 * 4 * deep.params);
    expect(device.host).toBe(0);
  });
});

describe('align on a model too large for the backend', () => {
  it('is exit 2 before any weight is read, with the estimate and the advice', async () => {
    const suite = copySuite('gpt2', ['config.json', 'batches.safetensors', 'hyperparams.json', 'train_curve.json', 'model.safetensors', 'manifest.json']);
    try {
      // The same folder, with GPT-2 XL's widths: 1.5B parameters. The weights file stays the tiny one: it must not be read.
      const config = JSON.parse(readFileSync(join(suite.dir, 'config.json'), 'utf8'));
      writeFileSync(join(suite.dir, 'config.json'), JSON.stringify({ ...config, n_embd: 1600, n_head: 25, n_layer: 48, n_inner: 6400, vocab_size: 50257 }));
      const r = await execa(TSX, ['src/cli/align.ts', suite.dir, '--only', 'train', '--backend', 'wasm', '--no-report', '--reports', join(work.dir, 'r')], { cwd: REPO, reject: false });
      expect(r.exitCode, r.stdout + r.stderr).toBe(2);
      const out = r.stdout + r.stderr;
      expect(out).toContain('does not fit the wasm backend for training');
      expect(out).toMatch(/parameters 5\.\d\d GiB/);
      expect(out).toContain('a GPU backend');
      expect(out).not.toMatch(/checkpoint does not fit the model/); // refused before the tiny weights were mapped
    } finally {
      suite.cleanup();
    }
  }, 120_000);
});
