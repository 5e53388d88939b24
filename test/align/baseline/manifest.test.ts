import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareMetric, DETERMINISTIC } from '../../../src/align/compare-curve.ts';
import { curveToleranceFor, loadManifest } from '../../../src/align/baseline/manifest.ts';
import { deriveFamily } from '../../../src/align/baseline/family.ts';
import { InputError } from '../../../src/errors.ts';
import { copySuite, SHIPPED, shippedJson, tempDir } from './helpers.ts';

const SUITES = ['bert', 'gpt2', 't5', 't5v11', 'megatron-bert', 'megatron-gpt2'] as const;

/** The family each shipped suite holds, as its README title states it. */
const README_FAMILY: Record<(typeof SUITES)[number], string> = {
  bert: 'bert',
  gpt2: 'gpt2',
  t5: 't5',
  t5v11: 't5',
  'megatron-bert': 'megatron-bert',
  'megatron-gpt2': 'megatron-gpt2',
};

describe('shipped manifests', () => {
  it.each(SUITES)('%s loads, names its suite and a family that agrees with the folder', (suite) => {
    const m = loadManifest(join(SHIPPED, suite));
    expect(m.file).toBe(join(SHIPPED, suite, 'manifest.json'));
    expect(m.suite).toBe(suite);
    expect(m.family).toBe(README_FAMILY[suite]);
    // The manifest states the family; the folder must agree with it.
    expect(deriveFamily(join(SHIPPED, suite))).toBe(m.family);
  });

  it.each(['bert', 'gpt2', 't5', 't5v11'] as const)('%s provenance matches hyperparams.json', (suite) => {
    const h = shippedJson<{ reference: { transformers_version: string; torch_version: string } }>(suite, 'hyperparams.json');
    const m = loadManifest(join(SHIPPED, suite));
    expect(m.reference.framework).toBe('transformers');
    expect(m.reference.version).toBe(h.reference.transformers_version);
    expect(m.reference.torch).toBe(h.reference.torch_version);
  });
});

describe('folders without a manifest', () => {
  it.each([
    ['bert', 'bert'],
    ['t5v11', 't5'],
    ['megatron-bert', 'megatron-bert'],
  ])('%s with only config.json is family %s, with transformers provenance from the config', (suite, family) => {
    const dir = copySuite(tempDir(), suite, ['config.json']);
    const m = loadManifest(dir);
    expect(m.file).toBeNull();
    expect(m.family).toBe(family);
    expect(m.suite).toBe(suite);
    expect(m.reference).toEqual({ framework: 'transformers', version: '4.30.2' });
    expect(m.references).toEqual([]);
    expect(m.tolerances.golden).toEqual(DETERMINISTIC);
  });

  it('a Megatron checkpoint folder without config.json is told apart by its hyperparams.json', () => {
    const dir = copySuite(tempDir(), 'megatron-gpt2', ['hyperparams.json']);
    mkdirSync(join(dir, 'tp1-v3'));
    writeFileSync(join(dir, 'tp1-v3', 'latest_checkpointed_iteration.txt'), '0');
    expect(loadManifest(dir).family).toBe('megatron-gpt2');
  });

  it('a folder with neither config.json nor a Megatron checkpoint is an input error', () => {
    expect(() => loadManifest(tempDir())).toThrow(/model family/);
  });
});

describe('manifest errors name the file and the key', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a wrong type deep inside', { schema: 1, tolerances: { curve: { loss: { atol: 'tight' } } } }, /key tolerances\.curve\.loss\.atol/],
    ['a negative tolerance', { schema: 1, tolerances: { forward: { atol: -1 } } }, /key tolerances\.forward\.atol/],
    ['a misspelt key', { schema: 1, tolerance: {} }, /key tolerance: unknown key/],
    ['a misspelt nested key', { schema: 1, tolerances: { curve: { loss: { atoll: 1 } } } }, /key tolerances\.curve\.loss\.atoll: unknown key/],
    ['an unknown family', { schema: 1, family: 'mamba' }, /key family/],
    ['a missing schema', { suite: 'x' }, /key schema/],
    ['a bad reference entry', { schema: 1, references: [{ name: 'a' }] }, /key references\[0\]\./],
  ];
  it.each(cases)('%s', (_, json, key) => {
    const dir = copySuite(tempDir(), 'gpt2', ['config.json']);
    const file = join(dir, 'manifest.json');
    writeFileSync(file, JSON.stringify(json));
    let error: unknown;
    try {
      loadManifest(dir);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).exitCode).toBe(2);
    expect((error as InputError).message).toContain(file);
    expect((error as InputError).message).toMatch(key);
  });

  it('invalid JSON names the file', () => {
    const dir = copySuite(tempDir(), 'gpt2', ['config.json']);
    writeFileSync(join(dir, 'manifest.json'), '{"schema": 1,');
    expect(() => loadManifest(dir)).toThrow(join(dir, 'manifest.json'));
  });
});

describe('tolerances', () => {
  it('a manifest overrides one metric and keeps the defaults of the others', () => {
    const dir = copySuite(tempDir(), 'gpt2', ['config.json']);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ schema: 1, tolerances: { curve: { loss: { atol: 0.5 } } } }));
    const m = loadManifest(dir);
    // The metric's default envelope rule stays unless the entry names its own or turns it off.
    expect(m.tolerances.curve.loss).toEqual({ policy: 'approximate', atol: 0.5, rtol: 0, allowedFailingSteps: 0, envelope: { k: 10, atol: 1e-5, rtol: 0 } });
    const defaults = loadManifest(copySuite(tempDir(), 'gpt2', ['config.json']));
    expect(m.tolerances.curve.grad_norm).toEqual(defaults.tolerances.curve.grad_norm);
  });

  it('"envelope": false turns a metric\'s envelope off; an envelope of its own replaces the default rule', () => {
    const dir = copySuite(tempDir(), 'gpt2', ['config.json']);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ schema: 1, tolerances: { curve: { loss: { atol: 0.5, envelope: false }, grad_norm: { rtol: 0.1, envelope: { k: 3, atol: 1e-4 } } }, forward: { envelope: false } } }));
    const m = loadManifest(dir);
    expect(m.tolerances.curve.loss.envelope).toBeUndefined();
    expect(m.tolerances.curve.grad_norm.envelope).toEqual({ k: 3, atol: 1e-4, rtol: 0 });
    expect(m.tolerances.forward.envelope).toBeUndefined();
    expect(loadManifest(copySuite(tempDir(), 'gpt2', ['config.json'])).tolerances.forward.envelope).toEqual({ k: 10 });
  });

  it('loss parts without their own entry use the loss tolerance; unknown metrics have none', () => {
    const m = loadManifest(join(SHIPPED, 'bert'));
    expect(curveToleranceFor(m, 'mlm_loss')).toEqual(m.tolerances.curve.loss);
    expect(curveToleranceFor(m, 'binary_loss')).toEqual(m.tolerances.curve.loss);
    expect(curveToleranceFor(m, 'tokens_per_second')).toBeUndefined();
  });

  it('the default LR tolerance holds lr(0) = 0 equal and catches a schedule off by one step', () => {
    const tol = curveToleranceFor(loadManifest(join(SHIPPED, 'gpt2')), 'lr');
    expect(tol).toBeDefined();
    // Linear warmup to 1e-3 over 100 steps, computed here in float64.
    const steps = Array.from({ length: 100 }, (_, i) => i);
    const lr = steps.map((s) => (1e-3 * s) / 100);
    const ref = { steps, metrics: { lr } };
    expect(compareMetric('lr', { steps, metrics: { lr: [...lr] } }, ref, tol!).pass).toBe(true);
    // The same values through a different float path (multiply first vs divide first) still pass.
    const other = steps.map((s) => 1e-3 * (s / 100));
    expect(compareMetric('lr', { steps, metrics: { lr: other } }, ref, tol!).pass).toBe(true);
    const shifted = steps.map((s) => (1e-3 * Math.max(0, s - 1)) / 100);
    const r = compareMetric('lr', { steps, metrics: { lr: shifted } }, ref, tol!);
    expect(r.pass).toBe(false);
    expect(r.firstFailingStep).toBe(1);
  });
});
