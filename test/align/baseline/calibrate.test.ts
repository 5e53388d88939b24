/**
 * `baseline calibrate`: the one-ulp kick (checked with float32 bit math written here, not with
 * the code under test), the spread and the proposals (hand-computed), a short real calibration of
 * the bert suite, and the CLI's manifest write and exit codes. Runs are short (30 steps, 2 kicked
 * runs): the 1000-step numbers belong in the README, not in a unit test.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../../src/backend/tf.ts';
import {
  calibrate,
  ceilSignificant,
  flipLastBits,
  metricForm,
  mulberry32,
  proposeTolerance,
  spreadOf,
  ulp32,
  type Calibration,
} from '../../../src/align/baseline/calibrate.ts';
import { LOSS_TOLERANCE, LR_TOLERANCE } from '../../../src/align/baseline/defaults.ts';
import { readHistory } from '../../../src/align/baseline/history.ts';
import { readNoiseFile } from '../../../src/align/noise.ts';
import { loadManifest } from '../../../src/align/baseline/manifest.ts';
import { isClose, type CurveTolerance } from '../../../src/align/compare-curve.ts';
import { readCurve } from '../../../src/align/curve.ts';
import { loadParams } from '../../../src/align/load-model.ts';
import { modelFromConfig } from '../../../src/families/registry.ts';
import { BASELINES, useBackend } from '../../support/backend.ts';
import { cli, copySuite, readJson, SHIPPED, tempDir } from './helpers.ts';

/** Bits of a float32, read through a typed-array view: independent of the code under test. */
function bitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

/**
 * The float32 ulp of the binade holding |x| (x a nonzero float32), from the exponent alone:
 * 2^(e − 23) for a normal number, 2^-149 for a denormal.
 */
function binadeUlp(x: number): number {
  const a = Math.abs(x);
  return a < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
}

/** a and b are float32s exactly one ulp apart, on the same side of zero. */
function oneUlpApart(a: number, b: number): boolean {
  return Math.fround(a) === a && Math.fround(b) === b && Math.sign(a) === Math.sign(b) && Math.abs(a - b) === binadeUlp(b);
}

/** |count − n·p| within 6 binomial standard deviations. */
function binomialOk(count: number, n: number, p: number): boolean {
  return Math.abs(count - n * p) <= 6 * Math.sqrt(n * p * (1 - p));
}

describe('the kick: last mantissa bit', () => {
  it('mulberry32 is a function of its seed, uniform enough to pick half', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    const c = mulberry32(8);
    const xs = Array.from({ length: 20000 }, () => a());
    expect(Array.from({ length: 20000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 20000 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(binomialOk(xs.filter((x) => x < 0.5).length, xs.length, 0.5)).toBe(true);
  });

  const SPECIAL = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  const ORDINARY = [1, 2, 0.5, -1, 7.6, -0.02, 1e-30, 3.4e38, 2 ** -140 /* denormal */, -3 * 2 ** -149 /* denormal */, 0.1, 123456.789];

  it.each(ORDINARY)('%d moves to an adjacent float32 when picked', (x) => {
    const x32 = Math.fround(x);
    const { values, flipped, eligible } = flipLastBits(new Float32Array([x32]), () => 0, 0.5);
    expect([flipped, eligible]).toEqual([1, 1]);
    expect(values[0]).not.toBe(x32);
    expect(oneUlpApart(values[0], x32), `${values[0]} vs ${x32}`).toBe(true);
    // Only the last bit changed.
    expect((bitsOf(values[0]) ^ bitsOf(x32)) >>> 0).toBe(1);
  });

  it('leaves zeros (of either sign), NaN and infinities alone, and does not touch its input', () => {
    const input = new Float32Array(SPECIAL);
    const { values, flipped, eligible } = flipLastBits(input, () => 0, 1);
    expect([flipped, eligible]).toEqual([0, 0]);
    SPECIAL.forEach((x, i) => expect(Object.is(values[i], x), String(x)).toBe(true));
    const before = Float32Array.from(input);
    flipLastBits(input, () => 0, 1);
    expect(input).toEqual(before);
  });

  it('an element not picked keeps every bit', () => {
    const { values, flipped } = flipLastBits(new Float32Array(ORDINARY), () => 0.9, 0.5);
    expect(flipped).toBe(0);
    ORDINARY.forEach((x, i) => expect(values[i]).toBe(Math.fround(x)));
  });

  it('picks about `fraction` of the elements, a different set per seed, moving up about as often as down', () => {
    const n = 100_000;
    const r = mulberry32(99);
    const start = Float32Array.from({ length: n }, () => Math.fround((r() - 0.5) * 0.04));
    const one = flipLastBits(start, mulberry32(1), 0.5).values;
    const two = flipLastBits(start, mulberry32(2), 0.5).values;
    const changed = (v: Float32Array) => [...v.keys()].filter((i) => v[i] !== start[i]);
    const c1 = changed(one);
    const c2 = changed(two);
    expect(binomialOk(c1.length, n, 0.5)).toBe(true);
    expect(c1.every((i) => oneUlpApart(one[i], start[i]))).toBe(true);
    // Independent picks overlap in about a quarter of the elements, not in all of them.
    const both = c1.filter((i) => two[i] !== start[i]).length;
    expect(binomialOk(both, n, 0.25)).toBe(true);
    const up = c1.filter((i) => Math.abs(one[i]) > Math.abs(start[i])).length;
    expect(binomialOk(up, c1.length, 0.5)).toBe(true);
    expect(c2.length).toBeGreaterThan(0);
  });
});

describe('spread and proposals', () => {
  it('spread is the largest |run_k − run_0| per step; the peaks name their steps', () => {
    const s = spreadOf([10, 11, 12, 13], [1, 2, 0, 4], [
      [1.5, 2, 0.1, 4],
      [0.75, 1, 0, 4.5],
    ]);
    expect(s.byStep).toEqual([0.5, 1, 0.1, 0.5]);
    expect([s.max, s.maxStep]).toEqual([1, 11]);
    // 0.5/1, 1/2, (step 12 has run_0 = 0: skipped), 0.5/4: the first of the two 0.5s.
    expect([s.maxRel, s.maxRelStep]).toEqual([0.5, 10]);
    expect(s.last).toBe(0.5);
  });

  it.each([
    [9.54e-7, 9.6e-7],
    [2.9e-6, 2.9e-6],
    [1, 1],
    [0.123, 0.13],
    [99.1, 100],
    [0, 0],
  ])('ceilSignificant(%d) = %d', (x, want) => {
    expect(ceilSignificant(x)).toBe(want);
  });

  it('ceilSignificant never rounds below its argument and stays within 10% above', () => {
    const r = mulberry32(3);
    for (let i = 0; i < 2000; i++) {
      const x = r() * 10 ** Math.floor(r() * 20 - 12);
      const c = ceilSignificant(x);
      expect(c).toBeGreaterThanOrEqual(x);
      expect(c).toBeLessThanOrEqual(x * 1.1 + Number.MIN_VALUE);
    }
  });

  it.each([
    [1, 2 ** -23],
    [7.6, 2 ** -21],
    [-3, 2 ** -22],
    [0.02, 2 ** -29],
  ])('ulp32(%d) = %d', (x, want) => {
    expect(ulp32(x)).toBe(want);
  });

  it.each([
    ['loss', 'absolute'],
    ['mlm_loss', 'absolute'],
    ['binary_loss', 'absolute'],
    ['grad_norm', 'relative'],
    ['lr', 'schedule'],
    ['num_zeros', 'measured'],
  ] as const)('%s is proposed as %s', (metric, form) => {
    expect(metricForm(metric)).toBe(form);
  });

  const steps = [0, 1, 2, 3];
  const base = [7.5, 7.0, 6.5, 6.0];
  const runs = [
    [7.5, 7.0 + 2e-6, 6.5 - 5e-6, 6.0 + 1e-6],
    [7.5 + 1e-6, 7.0, 6.5 + 3e-6, 6.0],
  ];

  it('a loss gets atol = 3 × its largest spread (rounded up), rtol 0, and covers every run at every step', () => {
    const spread = spreadOf(steps, base, runs);
    const tol = proposeTolerance('absolute', base, spread, 3)!;
    expect(tol.policy).toBe('approximate');
    expect(tol.rtol).toBe(0);
    // The largest kick is the 5e-6 at step 2 (as doubles: 6.5 − 5e-6 is not exact).
    expect(spread.max).toBeCloseTo(5e-6, 15);
    expect(spread.maxStep).toBe(2);
    expect(tol.atol).toBeGreaterThanOrEqual(3 * spread.max);
    expect(tol.atol).toBeLessThan(3 * spread.max * 1.1);
    for (const run of runs) run.forEach((v, i) => expect(isClose(v, base[i], tol)).toBe(true));
  });

  it('a loss that never moved gets one float32 ulp of its largest value, not 0', () => {
    const tol = proposeTolerance('absolute', base, spreadOf(steps, base, [base]), 3)!;
    expect(tol.atol).toBeGreaterThanOrEqual(2 ** -21); // 7.5 lies in [4, 8)
    expect(tol.atol).toBeLessThan(2 ** -20);
  });

  it('grad_norm gets rtol = 3 × its largest relative spread, so a spike carries a wider band', () => {
    const norms = [1, 15, 2];
    const kicked = [[1 + 1e-6, 15 + 6e-5, 2]];
    const spread = spreadOf([0, 1, 2], norms, kicked);
    const tol = proposeTolerance('relative', norms, spread, 3)!;
    expect(tol.atol).toBe(0);
    // 6e-5/15 = 4e-6 at the spike beats 1e-6/1 at step 0.
    expect(spread.maxRel).toBeCloseTo(4e-6, 15);
    expect(tol.rtol).toBeGreaterThanOrEqual(3 * spread.maxRel);
    kicked[0].forEach((v, i) => expect(isClose(v, norms[i], tol)).toBe(true));
    // An atol sized on the spike alone would be loose at the quiet steps; rtol is not.
    expect(tol.rtol * norms[0]).toBeLessThan(3 * 6e-5);
  });

  it('lr is proposed at the schedule tolerance whatever was measured; num_zeros gets no proposal', () => {
    const zero = spreadOf(steps, base, [base]);
    expect(proposeTolerance('schedule', base, zero, 3)).toEqual(LR_TOLERANCE);
    expect(proposeTolerance('schedule', base, zero, 3)!.rtol).toBe(1e-9);
    expect(proposeTolerance('measured', base, zero, 3)).toBeNull();
  });
});

describe('calibrating the bert suite for 30 steps, 2 kicked runs', () => {
  const STEPS = 30;
  const suiteDir = join(BASELINES, 'bert');
  const seen: Array<{ run: number; seed: number | null; flipped: number; eligible: number; weights: Map<string, Float32Array> }> = [];
  let c: Calibration;
  let tensorsBefore: number;
  let tensorsAfter: number;
  let loadLeak: number;

  beforeAll(async () => {
    await useBackend();
    // ParamStore.dispose leaves behind the tensor each variable was created from (one per
    // parameter): measure that once, so the calibration is charged only for its own tensors.
    const n = tf.memory().numTensors;
    loadParams(modelFromConfig(join(suiteDir, 'config.json')), join(suiteDir, 'model.safetensors')).params.dispose();
    loadLeak = tf.memory().numTensors - n;
    tensorsBefore = tf.memory().numTensors;
    c = await calibrate({
      suiteDir,
      backend: 'test',
      steps: STEPS,
      runs: 2,
      onRunStart: async (p, params) => {
        seen.push({ ...p, weights: await params.snapshot() });
      },
    });
    tensorsAfter = tf.memory().numTensors;
  });

  const metric = (name: string) => c.metrics.find((m) => m.metric === name)!;

  it('runs 1 + 2 replays of the asked length; kicks and runs leak no tensors', () => {
    expect(c.curves.length).toBe(3);
    for (const curve of c.curves) expect(curve.steps).toEqual([...Array(STEPS).keys()]);
    expect(tensorsAfter - tensorsBefore).toBe(loadLeak);
  });

  it('run 0 starts from the checkpoint bit for bit; runs 1 and 2 from about half of it one ulp off', async () => {
    const { params } = loadParams(modelFromConfig(join(suiteDir, 'config.json')), join(suiteDir, 'model.safetensors'));
    const checkpoint = await params.snapshot();
    params.dispose();
    expect(seen.map((s) => s.run)).toEqual([0, 1, 2]);
    const changedSets: Set<string>[] = [];
    for (const s of seen) {
      let changed = 0;
      let nonzero = 0;
      const set = new Set<string>();
      for (const [name, start] of checkpoint) {
        const got = s.weights.get(name)!;
        for (let i = 0; i < start.length; i++) {
          if (start[i] !== 0) nonzero++;
          if (Object.is(got[i], start[i])) continue;
          changed++;
          set.add(`${name}:${i}`);
          // Plain ifs: ~90k changed elements per run would make per-element expects slow.
          if (start[i] === 0 || !oneUlpApart(got[i], start[i])) expect.fail(`run ${s.run}: ${name}[${i}] ${start[i]} → ${got[i]} is not a one-ulp kick`);
        }
      }
      if (s.run === 0) {
        expect(changed).toBe(0);
        continue;
      }
      expect(changed).toBe(s.flipped);
      expect(s.eligible).toBe(nonzero);
      expect(binomialOk(changed, nonzero, 0.5)).toBe(true);
      changedSets.push(set);
    }
    const overlap = [...changedSets[0]].filter((k) => changedSets[1].has(k)).length;
    expect(overlap).toBeLessThan(changedSets[0].size * 0.6);
  });

  it('run 0 is the replay align runs: early steps agree with the HF reference within 1e-5', () => {
    const reference = readCurve(join(suiteDir, 'train_curve.json'));
    c.curves[0].metrics.loss.forEach((v, i) => expect(Math.abs(v - reference.metrics.loss[i])).toBeLessThan(1e-5));
  });

  it.each(['loss', 'mlm_loss', 'grad_norm'])('the kick shows in %s, but only at float32 rounding level (≪ 1e-3)', (name) => {
    const s = metric(name).spread;
    expect(s.max).toBeGreaterThan(0);
    // Over the first 30 steps a one-ulp kick stays within a few ulps of values ~1..8.
    expect(s.max).toBeLessThan(1e-5);
    expect(s.byStep.slice(0, 10).every((x) => x < 1e-5)).toBe(true);
  });

  it('lr does not move at all: the kick cannot reach the schedule', () => {
    expect(metric('lr').spread.max).toBe(0);
    expect(metric('lr').proposed).toEqual(LR_TOLERANCE);
  });

  it.each(['loss', 'mlm_loss', 'nsp_loss', 'grad_norm'])('the %s proposal is at least 3 × the spread and covers every kicked run at every step', (name) => {
    const m = metric(name);
    const tol = m.proposed!;
    if (m.form === 'absolute') expect(tol.atol).toBeGreaterThanOrEqual(3 * m.spread.max);
    else expect(tol.rtol).toBeGreaterThanOrEqual(3 * m.spread.maxRel);
    const base = c.curves[0].metrics[name];
    for (const run of c.curves.slice(1)) run.metrics[name].forEach((v, i) => expect(isClose(v, base[i], tol), `step ${i}`).toBe(true));
    // The whole point: far tighter than the shipped default.
    if (name.endsWith('loss')) expect(tol.atol).toBeLessThan(LOSS_TOLERANCE.atol / 10);
  });

  it('compares run 0 with the reference curve and the manifest tolerance', () => {
    const reference = readCurve(join(suiteDir, 'train_curve.json'));
    for (const name of ['loss', 'grad_norm', 'nsp_loss']) {
      const m = metric(name);
      const diffs = c.curves[0].metrics[name].map((v, i) => Math.abs(v - reference.metrics[name][i]));
      const worst = Math.max(...diffs);
      expect(m.reference!.steps).toBe(STEPS);
      expect(m.reference!.maxAbsDiff).toBe(worst);
      expect(m.reference!.maxAbsDiffStep).toBe(diffs.indexOf(worst));
      expect(m.reference!.failingStepsCurrent).toBe(diffs.filter((d, i) => !isClose(c.curves[0].metrics[name][i], reference.metrics[name][i], m.current!)).length);
    }
    expect(metric('loss').current).toEqual(loadManifest(suiteDir).tolerances.curve.loss);
  });
});

describe('npm run baseline -- calibrate', () => {
  // A suite shaped like the others whose config names a family Parity has no model for.
  const UNSUPPORTED = tempDir();
  mkdirSync(join(UNSUPPORTED, 'mamba'));
  writeFileSync(join(UNSUPPORTED, 'mamba', 'config.json'), JSON.stringify({ model_type: 'mamba', hidden_size: 64 }));
  const FILES = ['config.json', 'model.safetensors', 'batches.safetensors', 'hyperparams.json', 'train_curve.json', 'manifest.json'];

  it('--json and --write: the table, the JSON, the per-step spread saved as noise.<backend>.json, one history line, the manifest untouched', async () => {
    const root = tempDir();
    const dir = copySuite(root, 'bert', FILES);
    const before = readFileSync(join(dir, 'manifest.json'), 'utf8');
    const r = await cli(['calibrate', 'bert', '--steps', '30', '--runs', '2', '--json', 'cal.json', '--write', '--backend', 'wasm'], root);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const name of ['loss', 'lr', 'grad_norm', 'mlm_loss', 'nsp_loss']) expect(r.stdout).toMatch(new RegExp(`^${name} `, 'm'));
    expect(r.stdout).toMatch(/1 unperturbed \+ 2 perturbed runs × 30 steps/);

    const json = readJson<{ steps: number; metrics: Record<string, { proposed: CurveTolerance; maxSpread: number; maxSpreadStep: number; spread: number[] }> }>(join(root, 'cal.json'));
    expect(json.steps).toBe(30);
    expect(Object.keys(json.metrics).sort()).toEqual(['grad_norm', 'loss', 'lr', 'mlm_loss', 'nsp_loss']);
    expect(json.metrics.loss.spread.length).toBe(30);
    expect(json.metrics.loss.maxSpread).toBe(Math.max(...json.metrics.loss.spread));
    expect(json.metrics.loss.spread[json.metrics.loss.maxSpreadStep]).toBe(json.metrics.loss.maxSpread);

    // The noise file holds exactly the measured spread of every metric a tolerance can follow.
    const noise = readNoiseFile(join(dir, 'noise.wasm.json'));
    expect(noise).toMatchObject({ schema: 1, suite: 'bert', backend: 'wasm', steps: [...Array(30).keys()] });
    expect(Object.keys(noise.spread).sort()).toEqual(['grad_norm', 'loss', 'mlm_loss', 'nsp_loss']);
    for (const m of Object.keys(noise.spread)) expect(noise.spread[m]).toEqual(json.metrics[m].spread);
    expect(readFileSync(join(dir, 'manifest.json'), 'utf8')).toBe(before);

    const history = readHistory(dir);
    expect(history.length).toBe(1);
    expect(history[0]).toMatchObject({ action: 'calibrate', steps: 30, perturbedRuns: 2, file: 'noise.wasm.json', maxSpread: { loss: json.metrics.loss.maxSpread } });
    expect(history[0].reason).toMatch(/^calibrate: /);
  });

  it.each([
    ['an unknown suite', ['calibrate', 'no-such-suite', '--baselines', SHIPPED], /no such suite folder/],
    ['a suite whose model is not supported', ['calibrate', 'mamba', '--baselines', UNSUPPORTED], /unsupported model_type.*"mamba"/],
    ['--runs 0', ['calibrate', 'bert', '--runs', '0', '--baselines', SHIPPED], /--runs must be a whole number ≥ 1/],
    ['more steps than batches', ['calibrate', 'bert', '--steps', '100000', '--baselines', SHIPPED], /more steps asked than there are batches/],
    ['two suites', ['calibrate', 'bert', 'megatron-bert', '--baselines', SHIPPED], /exactly one suite/],
  ])('exits 2 on %s, writing nothing to stdout', async (_, args, message) => {
    const r = await cli(args, tempDir());
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: /m);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});
