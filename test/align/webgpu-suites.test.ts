/**
 * The shipped suites on the webgpu backend, through the same runSuite the CLI uses: every suite's
 * forward within its tolerance, a short training replay of every family with a curve against the
 * reference curve (early steps agree to ~1e-6 on a correct implementation), no tensor leaked per
 * step, and generation cached ≡ uncached ≡ the reference. The verdict names the adapter.
 */
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSuite } from '../../src/align/run-suite.ts';
import { tf } from '../../src/backend/tf.ts';
import { BASELINES } from '../support/backend.ts';
import { tempDir } from '../support/suite-copy.ts';
import { useWebGpu } from '../support/webgpu.ts';

const STEPS = 30;
const work = tempDir('parity-webgpu-');
beforeAll(useWebGpu);
afterAll(() => work.cleanup());

const SUITES = readdirSync(BASELINES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const run = (suite: string, options: Partial<Parameters<typeof runSuite>[0]>) =>
  runSuite({ suiteDir: `${BASELINES}${suite}`, backend: 'webgpu', reportsDir: work.dir, reports: false, ...options });

describe('forward parity on webgpu', () => {
  it.each(SUITES)('%s: every reference tensor within the suite tolerance', async (suite) => {
    const { verdict } = await run(suite, { only: 'forward' });
    expect(verdict.backend).toBe('webgpu');
    expect(verdict.environment.adapter?.description ?? '').not.toBe('');
    expect(verdict.forward!.tensors.filter((t) => !t.pass).map((t) => `${t.name} ${t.maxAbsDiff}`)).toEqual([]);
    expect(verdict.forward!.pass).toBe(true);
  });
});

describe(`training on webgpu, ${STEPS} steps`, () => {
  it.each(['bert', 'gpt2', 't5v11', 'llama', 'roberta', 'vit'])('%s: loss within 1e-5 of the reference at every step, no tensor leaked', async (suite) => {
    const live: number[] = [];
    const { verdict, curve, referenceCurve } = await run(suite, { only: 'train', steps: STEPS, onStep: () => live.push(tf.memory().numTensors) });
    expect(verdict.train!.steps).toBe(STEPS);
    const worst = Math.max(...curve!.metrics.loss.map((v, i) => Math.abs(v - referenceCurve!.metrics.loss[i])));
    expect(worst).toBeLessThan(1e-5);
    expect(verdict.train!.pass).toBe(true);
    expect(new Set(live).size).toBe(1);
    // A golden blessed on one adapter is never compared bit for bit with another device's run.
    expect(verdict.golden!.backend).toBe(verdict.environment.goldenKey);
  });
});

describe(`the device optimizer on webgpu, ${STEPS} steps`, () => {
  it('gpt2: clipping and AdamW on the GPU stay within the reference\'s tolerance, no tensor leaked', async () => {
    const live: number[] = [];
    const { verdict } = await run('gpt2', { only: 'train', steps: STEPS, optimizer: 'device', onStep: () => live.push(tf.memory().numTensors) });
    expect(verdict.train!.optimizer).toBe('device');
    expect(verdict.train!.metrics.filter((m) => !m.pass).map((m) => `${m.metric} ${m.maxAbsDiff}`)).toEqual([]);
    expect(new Set(live).size).toBe(1);
  });
});

describe('generation on webgpu', () => {
  it.each(['gpt2', 't5', 't5v11', 'llama'])('%s: tokens equal the reference, cached ≡ uncached', async (suite) => {
    const { verdict } = await run(suite, { only: 'generation' });
    expect(verdict.generation!.cachedEqualsUncached).toBe(true);
    expect(verdict.generation!.matchesReference).toBe(true);
    expect(verdict.generation!.pass).toBe(true);
  });
});
