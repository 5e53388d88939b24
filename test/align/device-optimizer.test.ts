/**
 * Clipping and AdamW on the backend (`--optimizer device`), for models where moving every
 * gradient and parameter through the host each step costs more than the step: the same update
 * rules as the float32-exact host optimizer, so over a short replay both stay within the
 * reference's envelope and close to each other; the difference is measured here, not assumed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/align/baseline/manifest.ts';
import { modelFromConfig } from '../../src/families/registry.ts';
import { loadSuite } from '../../src/align/suite.ts';
import { checkTraining } from '../../src/align/train-check.ts';
import { tf } from '../../src/backend/tf.ts';
import { BASELINES, useBackend } from '../support/backend.ts';

beforeAll(useBackend);

const STEPS = 30;

describe.each([
  // torch AdamW with torch clipping; apex FusedAdam with Megatron clipping and its num-zeros.
  { suite: 'bert', weights: undefined },
  { suite: 'megatron-bert', weights: 'hf_padded_vpad1024.safetensors' },
])('$suite: the device optimizer', ({ suite, weights }) => {
  const dir = `${BASELINES}${suite}`;
  const run = async (optimizer: 'host' | 'device') => {
    const live: number[] = [];
    const r = await checkTraining(modelFromConfig(`${dir}/config.json`), loadSuite(dir), loadManifest(dir), {
      steps: STEPS,
      goldenKey: 'wasm',
      optimizer,
      ...(weights ? { weights: `${dir}/${weights}` } : {}),
      onStep: () => live.push(tf.memory().numTensors),
    });
    return { ...r, live };
  };

  it(`stays within the reference's tolerance and within 1e-5 of the host optimizer's loss over ${STEPS} steps`, async () => {
    const host = await run('host');
    const device = await run('device');
    expect(device.verdict.optimizer).toBe('device');
    expect(device.verdict.metrics.filter((m) => !m.pass).map((m) => `${m.metric} ${m.maxAbsDiff}`)).toEqual([]);
    const gap = Math.max(...device.curve.metrics.loss.map((v, i) => Math.abs(v - host.curve.metrics.loss[i])));
    expect(gap).toBeLessThan(1e-5);
    // Its own golden key: a device-optimizer run is never held bit for bit to the host golden.
    expect(device.golden.backend).toBe('wasm-device-optimizer');
    expect(new Set(device.live).size).toBe(1);
  });
});
