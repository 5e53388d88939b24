import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareMetric } from '../../../src/align/compare-curve.ts';
import { curveFromJson, type Curve } from '../../../src/align/curve.ts';
import { LOSS_TOLERANCE } from '../../../src/align/baseline/defaults.ts';
import { checkGolden, goldenPath, parseGolden, serializeGolden, type Golden } from '../../../src/align/baseline/golden.ts';
import { InputError } from '../../../src/errors.ts';
import { copySuite, SHIPPED, shippedJson, tempDir } from './helpers.ts';

const bertCurve = (): Curve => curveFromJson(shippedJson('bert', 'train_curve.json'), join(SHIPPED, 'bert/train_curve.json'));

function golden(curve: Curve, backend = 'wasm'): Golden {
  return { schema: 1, suite: 'bert', backend, createdAt: '2026-01-01T00:00:00.000Z', fromRun: 'reports/bert/x', reason: 'test', steps: curve.steps.length, curve };
}

/** The next float32 above x, by incrementing its bit pattern (independent of any code under test). */
function nextFloat32Up(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] += x >= 0 ? 1 : -1;
  return f[0];
}

function suiteWithGolden(curve: Curve, backend = 'wasm'): string {
  const dir = copySuite(tempDir(), 'bert', ['config.json']);
  writeFileSync(goldenPath(dir, backend), serializeGolden(golden(curve, backend)));
  return dir;
}

function prefix(curve: Curve, n: number): Curve {
  return { steps: curve.steps.slice(0, n), metrics: Object.fromEntries(Object.entries(curve.metrics).map(([k, v]) => [k, v.slice(0, n)])) };
}

describe('golden files round-trip every value exactly', () => {
  it('the bert reference curve (float32 values widened to double) survives write → read bit for bit', () => {
    const curve = bertCurve();
    // The values really are float32: fround leaves them unchanged.
    for (const v of curve.metrics.loss) expect(Math.fround(v)).toBe(v);
    const back = parseGolden(serializeGolden(golden(curve)), 'mem');
    expect(back.curve.steps).toEqual(curve.steps);
    for (const [k, values] of Object.entries(curve.metrics)) {
      values.forEach((v, i) => expect(Object.is(back.curve.metrics[k][i], v)).toBe(true));
    }
  });

  it('random float32 bit patterns, subnormals included, and full doubles survive', () => {
    const bits = new Uint32Array(5000);
    let seed = 12345;
    for (let i = 0; i < bits.length; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // LCG: deterministic, no library
      bits[i] = seed;
    }
    const f32 = Array.from(new Float32Array(bits.buffer)).filter((v) => Number.isFinite(v) && !Object.is(v, -0));
    f32.push(1.4e-45, -1.4e-45, 3.4028234663852886e38, 1.1754942106924411e-38);
    const doubles = shippedJson<{ grad_norm: number[] }>('megatron-bert', 'train_curve.json').grad_norm; // float64-accumulated
    for (const values of [f32, doubles]) {
      const curve: Curve = { steps: values.map((_, i) => i), metrics: { loss: values } };
      const back = parseGolden(serializeGolden(golden(curve)), 'mem').curve.metrics.loss;
      expect(back.length).toBe(values.length);
      values.forEach((v, i) => {
        if (!Object.is(back[i], v)) throw new Error(`value ${i}: ${v} came back as ${back[i]}`);
      });
    }
  });
});

describe('checkGolden', () => {
  it('one float32 ulp of difference fails the deterministic policy and passes the approximate one', () => {
    const curve = bertCurve();
    const dir = suiteWithGolden(curve);
    const ours = structuredClone(curve);
    ours.metrics.loss[500] = nextFloat32Up(ours.metrics.loss[500]);
    expect(ours.metrics.loss[500]).not.toBe(curve.metrics.loss[500]);

    const v = checkGolden(dir, 'wasm', ours);
    expect(v.present).toBe(true);
    expect(v.pass).toBe(false);
    const loss = v.metrics.find((m) => m.metric === 'loss')!;
    expect(loss.policy).toBe('deterministic');
    expect(loss.failingSteps).toBe(1);
    expect(loss.firstFailingStep).toBe(500);
    expect(v.metrics.filter((m) => m.metric !== 'loss').every((m) => m.pass)).toBe(true);

    expect(compareMetric('loss', ours, curve, LOSS_TOLERANCE).pass).toBe(true);
  });

  it('an identical run passes on every metric the golden has', () => {
    const curve = bertCurve();
    const v = checkGolden(suiteWithGolden(curve), 'wasm', structuredClone(curve));
    expect(v.pass).toBe(true);
    expect(v.metrics.map((m) => m.metric).sort()).toEqual(Object.keys(curve.metrics).sort());
    expect(v.metrics.every((m) => m.steps === 1000)).toBe(true);
  });

  it('a shorter run compares its prefix; a longer run compares the golden steps', () => {
    const curve = bertCurve();
    const short = checkGolden(suiteWithGolden(curve), 'wasm', prefix(curve, 100));
    expect(short.pass).toBe(true);
    expect(short.metrics.every((m) => m.steps === 100)).toBe(true);

    const long = checkGolden(suiteWithGolden(prefix(curve, 100)), 'wasm', curve);
    expect(long.pass).toBe(true);
    expect(long.metrics.every((m) => m.steps === 100)).toBe(true);
  });

  it('a metric the golden has and the run lacks fails', () => {
    const curve = bertCurve();
    const ours = structuredClone(curve);
    delete ours.metrics.nsp_loss;
    const v = checkGolden(suiteWithGolden(curve), 'wasm', ours);
    expect(v.pass).toBe(false);
    expect(v.metrics.find((m) => m.metric === 'nsp_loss')!.pass).toBe(false);
  });

  it('a run with no steps fails rather than passing vacuously', () => {
    const v = checkGolden(suiteWithGolden(bertCurve()), 'wasm', { steps: [], metrics: { loss: [] } });
    expect(v.pass).toBe(false);
  });

  it('no golden for the backend is reported as absent, not passed', () => {
    const dir = suiteWithGolden(bertCurve(), 'wasm');
    const v = checkGolden(dir, 'tensorflow-gpu', bertCurve());
    expect(v).toEqual({ backend: 'tensorflow-gpu', file: join(dir, 'golden.tensorflow-gpu.json'), present: false, pass: false, metrics: [] });
  });

  it.each([
    ['a Python NaN token', (t: string) => t.replace(/("loss": \[\n\s*)[^,\n]+/, '$1NaN'), /NaN or Infinity/],
    ['Infinity', (t: string) => t.replace(/("loss": \[\n\s*)[^,\n]+/, '$1Infinity'), /NaN or Infinity/],
    ['null (NaN through JSON.stringify)', (t: string) => t.replace(/("loss": \[\n\s*)[^,\n]+/, '$1null'), /null/],
    ['an overflowing literal (parses to Infinity)', (t: string) => t.replace(/("loss": \[\n\s*)[^,\n]+/, '$11e999'), /Infinity/],
  ])('a golden holding %s is rejected', (_, corrupt, message) => {
    const curve = bertCurve();
    const dir = suiteWithGolden(curve);
    const file = goldenPath(dir, 'wasm');
    const text = corrupt(serializeGolden(golden(curve)));
    expect(text).not.toBe(serializeGolden(golden(curve)));
    writeFileSync(file, text);
    let error: unknown;
    try {
      checkGolden(dir, 'wasm', curve);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(message);
  });
});
