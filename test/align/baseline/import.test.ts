/**
 * Importers, checked against the shipped megatron-bert reference files: its train_curve.json is
 * the per-iteration truth from which the README says the golden values (rounded to 5 decimals)
 * and the stdout log (interval means, %.6E) were produced.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../../src/align/baseline/import/csv.ts';
import { parseHfTrainerState } from '../../../src/align/baseline/import/hf-trainer-state.ts';
import { parseMegatronGolden } from '../../../src/align/baseline/import/megatron-golden.ts';
import { parseMegatronLog } from '../../../src/align/baseline/import/megatron-log.ts';
import { parseTxt } from '../../../src/align/baseline/import/txt.ts';
import { readReference } from '../../../src/align/baseline/reference-file.ts';
import { loadManifest } from '../../../src/align/baseline/manifest.ts';
import { cli, copySuite, readJson, SHIPPED, shippedJson, tempDir } from './helpers.ts';

interface MegatronCurve {
  iteration: number[];
  steps: number[];
  lm_loss: number[];
  binary_loss: number[];
  grad_norm: number[];
  lr: number[];
  lr_after_step: number[];
  num_zeros: number[];
}
interface GoldenMetric {
  start_step: number;
  end_step: number;
  step_interval: number;
  values: number[] | Record<string, number>;
}

const MB = join(SHIPPED, 'megatron-bert');
const curve = shippedJson<MegatronCurve>('megatron-bert', 'train_curve.json');
const text = (file: string) => readFileSync(join(MB, file), 'utf8');
const opts = { family: 'megatron-bert' as const };

describe('Megatron golden values', () => {
  it('dict form: iteration key k is our step k−1, values exact, and they match the curve to 5 decimals', () => {
    const file = shippedJson<Record<string, GoldenMetric>>('megatron-bert', 'golden_values_current.json');
    for (const [metric, ours] of [['lm loss', 'lm_loss'], ['num-zeros', 'num_zeros']] as const) {
      const s = parseMegatronGolden(text('golden_values_current.json'), 'g.json', { ...opts, metric });
      const values = file[metric].values as Record<string, number>;
      expect(s.ours).toBe(ours);
      expect(s.steps).toEqual(Object.keys(values).map((k) => Number(k) - 1));
      expect(s.values).toEqual(Object.values(values));
      expect(s.interval).toBe(1);
      s.steps.forEach((step, i) => expect(Math.abs(s.values[i] - curve[ours][step])).toBeLessThanOrEqual(5e-6));
    }
  });

  it('list form: values[i] is iteration start_step + i·interval + 1 (the only offset that matches the curve)', () => {
    const file = shippedJson<Record<string, GoldenMetric>>('megatron-bert', 'golden_values_2023.json');
    const values = file['lm loss'].values as number[];
    const s = parseMegatronGolden(text('golden_values_2023.json'), 'g.json', opts);
    expect(s.steps).toEqual(values.map((_, i) => 5 * i)); // iteration 5i+1 → step 5i
    expect(s.values).toEqual(values);
    const maxDiff = (offset: number) =>
      Math.max(...values.map((v, i) => (5 * i + offset >= 0 && 5 * i + offset < 1000 ? Math.abs(v - curve.lm_loss[5 * i + offset]) : 0)));
    expect(maxDiff(0)).toBeLessThanOrEqual(5e-6);
    expect(maxDiff(-1)).toBeGreaterThan(0.1);
    expect(maxDiff(1)).toBeGreaterThan(0.1);
  });

  it.each([
    ['NaN', '"values": {"1": NaN}', /NaN or Infinity/],
    ['null', '"values": {"1": null}', /null/],
    ['Infinity', '"values": [Infinity]', /NaN or Infinity/],
    ['an overflowing literal', '"values": [1e999]', /Infinity/],
  ])('rejects a golden holding %s', (_, values, message) => {
    const json = `{"lm loss": {"start_step": 1, "end_step": 1, "step_interval": 1, ${values}}}`;
    expect(() => parseMegatronGolden(json, 'bad.json', opts)).toThrow(message);
  });

  it('names the metrics a file has when --metric is not one of them', () => {
    expect(() => parseMegatronGolden(text('golden_values_current.json'), 'g.json', { ...opts, metric: 'sop loss' })).toThrow(/lm loss, num-zeros/);
  });
});

/** Half a unit in the last place of a %.6E-printed value, from its text. */
function halfUlpE6(token: string): number {
  const exp = Number(token.split(/E/i)[1]);
  return 0.5 * 10 ** (exp - 6);
}

function logTokens(key: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text('megatron_train.log').split('\n')) {
    const it = /iteration\s+(\d+)\//.exec(line);
    const v = new RegExp(`\\| ${key}: (\\S+) \\|`).exec(line);
    if (it && v) out.set(Number(it[1]), v[1]);
  }
  return out;
}

describe('Megatron stdout log (23.06)', () => {
  it.each([
    ['lm loss', 'lm_loss'],
    ['sop loss', 'binary_loss'],
  ] as const)('%s: 10-iteration means of the curve, within the printed precision', (metric, ours) => {
    const s = parseMegatronLog(text('megatron_train.log'), 'log', { ...opts, metric });
    const tokens = logTokens(metric);
    expect(s.ours).toBe(ours);
    expect(s.interval).toBe(10);
    expect(s.steps).toEqual([...tokens.keys()].map((it) => it - 1));
    expect(s.rounding).toEqual({ atol: 0, rtol: 5e-7 });
    let maxRel = 0;
    s.steps.forEach((step, i) => {
      const window = curve[ours].slice(step - 9, step + 1);
      expect(window).toHaveLength(10);
      const mean = window.reduce((a, b) => a + b, 0) / 10;
      const token = tokens.get(step + 1)!;
      // Printed %.6E (half an ulp of the text) plus Megatron's float32 sum of 10 values (≤ 10·2^-24 relative).
      const bound = halfUlpE6(token) + 10 * 2 ** -24 * Math.abs(mean);
      expect(Math.abs(s.values[i] - mean)).toBeLessThanOrEqual(bound);
      maxRel = Math.max(maxRel, Math.abs(s.values[i] - mean) / Math.abs(s.values[i]));
    });
    expect(maxRel).toBeLessThanOrEqual(5e-7);
  });

  it('learning rate is the next iteration\'s: iteration I maps to our step I', () => {
    const s = parseMegatronLog(text('megatron_train.log'), 'log', { ...opts, metric: 'learning rate' });
    expect(s.ours).toBe('lr');
    expect(s.interval).toBe(1);
    expect(s.printedAfterSchedulerStep).toBe(true);
    expect(s.steps).toEqual([...logTokens('learning rate').keys()]);
    s.steps.forEach((step, i) => {
      // %.3E: half a unit in the 3rd mantissa decimal.
      expect(Math.abs(s.values[i] - curve.lr_after_step[step - 1])).toBeLessThanOrEqual(5e-4 * Math.abs(s.values[i]));
      if (step < 1000) expect(Math.abs(s.values[i] - curve.lr[step])).toBeLessThanOrEqual(5e-4 * Math.abs(s.values[i]));
    });
  });

  it('grad norm and num zeros are the printing iteration\'s own values', () => {
    for (const [metric, ours, atol] of [['grad norm', 'grad_norm', 5e-4], ['num zeros', 'num_zeros', 0.05]] as const) {
      const s = parseMegatronLog(text('megatron_train.log'), 'log', { ...opts, metric });
      expect(s.ours).toBe(ours);
      expect(s.interval).toBe(1);
      expect(s.rounding.atol).toBeCloseTo(atol, 12);
      s.steps.forEach((step, i) => expect(Math.abs(s.values[i] - curve[ours][step])).toBeLessThanOrEqual(atol + 1e-12));
    }
  });

  it('the newer format (timestamp prefix, %.6E LR) with validation lines gives the same curve', () => {
    const lines = text('megatron_train.log').split('\n');
    const rewritten: string[] = [];
    for (const line of lines) {
      const m = /^ iteration\s+(\d+)\//.exec(line);
      if (!m) {
        rewritten.push(line);
        continue;
      }
      rewritten.push(`[2025-03-01 12:00:00.123456]${line.replace(/learning rate: (\S+)/, (_, v: string) => `learning rate: ${Number(v).toExponential(6).toUpperCase().replace(/E([+-])(\d)$/, 'E$10$2')}`)}`);
      if (Number(m[1]) % 100 === 0) {
        rewritten.push(` validation loss at iteration ${m[1]} | lm loss value: 9.999999E+00 | lm loss PPL: 2.202646E+04 |`);
      }
    }
    const newer = rewritten.join('\n');
    expect(newer).toContain('[2025-03-01 12:00:00.123456] iteration       10/    1000 |');
    for (const metric of ['lm loss', 'learning rate']) {
      const a = parseMegatronLog(text('megatron_train.log'), 'old', { ...opts, metric });
      const b = parseMegatronLog(newer, 'new', { ...opts, metric });
      expect(b.steps).toEqual(a.steps);
      expect(b.values).toEqual(a.values);
      expect(b.values).not.toContain(9.999999);
    }
  });

  it('names the keys the log has when --metric is absent from it', () => {
    expect(() => parseMegatronLog(text('megatron_train.log'), 'log', { ...opts, metric: 'mtp_1 loss' })).toThrow(/lm loss, sop loss/);
  });
});

describe('HF trainer_state.json', () => {
  /** A trainer_state.json as HF Trainer ≤ 4.50 writes it, built from the gpt2 reference curve with logging_steps 10 and logging_first_step. */
  function trainerState(lrLogged: 'next' | 'used'): { json: string; c: { loss: number[]; lr: number[]; grad_norm: number[] } } {
    const c = shippedJson<{ loss: number[]; lr: number[]; grad_norm: number[] }>('gpt2', 'train_curve.json');
    const log: Array<Record<string, number>> = [];
    let last = 0;
    for (const step of [1, ...Array.from({ length: 100 }, (_, i) => 10 * (i + 1))]) {
      const window = c.loss.slice(last, step);
      const entry: Record<string, number> = {
        epoch: step / 1000,
        grad_norm: c.grad_norm[step - 1],
        learning_rate: lrLogged === 'next' ? (c.lr[step] ?? 0) : c.lr[step - 1],
        loss: Math.round((window.reduce((a, b) => a + b, 0) / window.length) * 1e4) / 1e4,
        step,
      };
      log.push(entry);
      if (step % 50 === 0) log.push({ epoch: step / 1000, eval_loss: 5, step });
      last = step;
    }
    log.push({ epoch: 1, step: 1000, train_loss: 4, train_runtime: 10 });
    return { json: JSON.stringify({ global_step: 1000, logging_steps: 10, log_history: log }), c };
  }

  it('loss: interval 10 from logging_steps, global_step s is our step s−1, rounding 4 decimals', () => {
    const { json, c } = trainerState('next');
    const s = parseHfTrainerState(json, 'ts.json', { family: 'gpt2' });
    expect(s.ours).toBe('loss');
    expect(s.interval).toBe(10);
    expect(s.steps[0]).toBe(0);
    expect(s.steps.slice(1)).toEqual(Array.from({ length: 100 }, (_, i) => 10 * (i + 1) - 1));
    expect(s.rounding.atol).toBe(5e-5);
    expect(s.values[1]).toBeCloseTo(c.loss.slice(1, 10).reduce((a, b) => a + b, 0) / 9, 4);
  });

  it.each(['next', 'used'] as const)('learning_rate logged as the %s step\'s maps onto our lr', (lrLogged) => {
    const { json, c } = trainerState(lrLogged);
    const s = parseHfTrainerState(json, 'ts.json', { family: 'gpt2', metric: 'learning_rate', lrLogged });
    expect(s.ours).toBe('lr');
    s.steps.forEach((step, i) => {
      if (step < 1000) expect(s.values[i]).toBe(c.lr[step]);
    });
  });

  it('learning_rate without --lr-logged is refused (the file does not say which transformers wrote it)', () => {
    expect(() => parseHfTrainerState(trainerState('next').json, 'ts.json', { family: 'gpt2', metric: 'learning_rate' })).toThrow(/--lr-logged/);
  });
});

describe('CSV and txt', () => {
  it('a step column counts from 0, an iteration column from 1', () => {
    const a = parseCsv('step,loss\n0,7.5\n1,7.25\n2,7.0\n', 'a.csv', { family: 'gpt2' });
    expect(a.steps).toEqual([0, 1, 2]);
    expect(a.values).toEqual([7.5, 7.25, 7.0]);
    const b = parseCsv('iteration,lm loss,grad norm\n1,7.5,1.0\n2,7.25,2.0\n', 'b.csv', { family: 'megatron-bert', metric: 'lm loss' });
    expect(b.steps).toEqual([0, 1]);
    expect(b.ours).toBe('lm_loss');
  });

  it('infers how coarsely a column was printed', () => {
    expect(parseCsv('step,loss\n0,8.6368\n1,8.5\n', 'a.csv', { family: 'gpt2' }).rounding).toEqual({ atol: 5e-5, rtol: 0 });
    expect(parseCsv('step,loss\n0,7.596599102020264\n1,7.6\n', 'a.csv', { family: 'gpt2' }).rounding).toEqual({ atol: 0, rtol: 0 });
  });

  it.each([
    ['no step column', 'loss\n1\n', /no step column/],
    ['several metric columns and no --metric', 'step,a,b\n0,1,2\n', /choose one with --metric/],
    ['a non-numeric value', 'step,loss\n0,nan\n', /finite/],
    ['a repeated step', 'step,loss\n0,1\n0,2\n', /appears twice/],
  ])('refuses %s', (_, csv, message) => {
    expect(() => parseCsv(csv, 'x.csv', { family: 'gpt2' })).toThrow(message);
  });

  it('txt: line k is step k−1, with a warning that the file stores no steps', () => {
    const s = parseTxt('8.6368\n\n# comment\n8.5\n8.25\n', 'torch_loss.txt', { family: 'gpt2' });
    expect(s.steps).toEqual([0, 1, 2]);
    expect(s.values).toEqual([8.6368, 8.5, 8.25]);
    expect(s.warnings.join()).toMatch(/stores no steps/);
    expect(() => parseTxt('1 8.6\n', 't.txt', { family: 'gpt2' })).toThrow(/--format csv/);
  });
});

describe('baseline import (real CLI)', () => {
  it('writes references/<name>.json with provenance, registers it and logs it', async () => {
    const root = tempDir();
    const suiteDir = copySuite(root, 'megatron-bert', ['config.json', 'manifest.json']);
    const manifestBefore = readJson<Record<string, unknown>>(join(suiteDir, 'manifest.json'));
    const r = await cli(['import', join(MB, 'megatron_train.log'), '--format', 'megatron-log', '--metric', 'sop loss', '--into', 'megatron-bert', '--name', 'sop'], root);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const ref = readReference(join(suiteDir, 'references/sop.json'));
    expect(ref).toMatchObject({ name: 'sop', format: 'megatron-log', metric: 'sop loss', ours: 'binary_loss', interval: 10, stepBase: 1 });
    expect(ref.source.file).toBe(join(MB, 'megatron_train.log'));
    expect(ref.source.sha256).toBe(createHash('sha256').update(readFileSync(join(MB, 'megatron_train.log'))).digest('hex'));
    const m = loadManifest(suiteDir);
    expect(m.references).toEqual([{ name: 'sop', file: 'references/sop.json', format: 'megatron-log', metric: 'sop loss', ours: 'binary_loss', interval: 10, importedAt: ref.importedAt }]);
    // The user's own keys are kept as written.
    const after = readJson<Record<string, unknown>>(join(suiteDir, 'manifest.json'));
    expect({ ...after, references: undefined }).toEqual({ ...manifestBefore, references: undefined });
    const history = readFileSync(join(suiteDir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ action: 'import', name: 'sop', format: 'megatron-log', metric: 'sop loss', points: 100, interval: 10 });
  });

  it('refuses a second reference of the same name unless --force', async () => {
    const root = tempDir();
    copySuite(root, 'megatron-bert', ['config.json']);
    const args = ['import', join(MB, 'golden_values_current.json'), '--format', 'megatron-golden', '--into', 'megatron-bert'];
    expect((await cli(args, root)).exitCode).toBe(0);
    const again = await cli(args, root);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/megatron-golden-lm-loss.*exists/);
    expect((await cli([...args, '--force'], root)).exitCode).toBe(0);
  });

  it('prints the txt warning and exits 0', async () => {
    const root = tempDir();
    copySuite(root, 'gpt2', ['config.json']);
    writeFileSync(join(root, 'torch_loss.txt'), '6.85\n6.82\n');
    const r = await cli(['import', 'torch_loss.txt', '--format', 'txt', '--into', 'gpt2'], root);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/^warning: .*stores no steps/m);
  });

  it.each([
    ['a golden with NaN', '{"lm loss": {"start_step": 1, "end_step": 2, "step_interval": 1, "values": {"1": 6.9, "2": NaN}}}', ['--format', 'megatron-golden'], /NaN or Infinity/],
    ['a missing --format', '1\n', [], /--format is required/],
    ['an unknown --format', '1\n', ['--format', 'tensorboard'], /--format must be one of/],
    ['--step-base on a log', '1\n', ['--format', 'megatron-log', '--step-base', '1'], /--step-base applies to --format csv only/],
    ['--lr-logged on a csv', 'step,lr\n0,0\n', ['--format', 'csv', '--lr-logged', 'next'], /--lr-logged applies to/],
    ['a bad --name', '1\n', ['--format', 'txt', '--name', '../escape'], /--name must be a plain file name/],
  ])('exits 2 on %s, naming the problem', async (_, content, flags, message) => {
    const root = tempDir();
    const suiteDir = copySuite(root, 'megatron-bert', ['config.json']);
    writeFileSync(join(root, 'in.dat'), content);
    const r = await cli(['import', 'in.dat', ...flags, '--into', 'megatron-bert'], root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(readdirSafe(suiteDir)).toEqual(['config.json']);
  });
});

function readdirSafe(dir: string): string[] {
  return readdirSync(dir).sort();
}
