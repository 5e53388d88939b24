/**
 * `npm run align -- <dir> --reference …`: a folder with only config.json, the ONNX export and the
 * eval inputs is a usable suite (onnxruntime computes the reference forward), T5's encoder and
 * decoder pair by the folder convention, and a bad export is exit 2 naming it.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copySuite, REPO, TSX, tempDir } from '../support/suite-copy.ts';

const work = tempDir('parity-reference-');
afterAll(() => work.cleanup());

async function align(dir: string, ...args: string[]) {
  const json = join(work.dir, `v${Math.random().toString(36).slice(2)}.json`);
  const r = await execa(TSX, ['src/cli/align.ts', dir, '--no-report', '--reports', join(work.dir, 'r'), '--json', json, ...args], { cwd: REPO, reject: false });
  return { ...r, verdict: r.exitCode === 2 ? null : JSON.parse(readFileSync(json, 'utf8')) };
}

describe('align against a live ONNX reference', () => {
  it('a folder with only config.json, model.onnx and eval inputs aligns (exit 0), every checkpoint within 1e-5', async () => {
    const suite = copySuite('gpt2', ['config.json', 'model.onnx', 'eval_inputs.safetensors']);
    try {
      const r = await align(suite.dir);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('run by onnxruntime');
      expect(r.stdout).toMatch(/sub-block checkpoints: 23 against the onnx reference \(onnxruntime-node 1\.30\.0, 1 thread, optimization disabled\), 0 over tolerance/);
      const f = r.verdict.forward;
      expect(f.reference.kind).toBe('onnx');
      expect(f.checkpoints.every((c: { pass: boolean; maxAbsDiff: number }) => c.pass && c.maxAbsDiff <= 1e-5)).toBe(true);
      expect(Object.keys(r.verdict.environment.suiteHashes)).toContain('model.onnx');
      expect(r.verdict.train).toBeUndefined();
    } finally {
      suite.cleanup();
    }
  });

  it('t5 by the folder convention (encoder.onnx, then decoder.onnx), and by an explicit list', async () => {
    const byFolder = await align('t5', '--only', 'forward', '--reference', 'onnx');
    expect(byFolder.exitCode, byFolder.stdout + byFolder.stderr).toBe(0);
    expect(byFolder.verdict.forward.reference.files.map((p: string) => p.split('/').pop())).toEqual(['encoder.onnx', 'decoder.onnx']);
    const byList = await align('t5', '--only', 'forward', '--reference', 'baselines/t5/encoder.onnx,baselines/t5/decoder.onnx', '--ort-optimization', 'all');
    expect(byList.exitCode, byList.stderr).toBe(0);
    expect(byList.verdict.forward.reference.runtime.optimization).toBe('all');
    expect(byList.verdict.forward.checkpoints.length).toBeGreaterThan(50);
  });

  it('--reference stored keeps the stored forward, and names the finest stored checkpoint', async () => {
    const r = await align('bert', '--only', 'forward', '--reference', 'stored');
    expect(r.exitCode).toBe(0);
    expect(r.verdict.forward.reference.kind).toBe('stored');
    expect(r.verdict.forward.checkpoints.map((c: { name: string }) => c.name)).toContain('final/layer.1/attn.probs');
  });

  it.each([
    ['a missing file', () => join(work.dir, 'absent.onnx'), /absent\.onnx: no such file/],
    ['a truncated export', () => {
      const path = join(work.dir, 'cut.onnx');
      const bytes = readFileSync(join(REPO, 'baselines/bert/model.onnx'));
      writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 3)));
      return path;
    }, /cut\.onnx: .*(truncated|past the end)/],
    // Our weights load from the export: a GPT-2 graph cannot fill a BERT.
    ['an export of another model', () => join(REPO, 'baselines/gpt2/model.onnx'), /gpt2\/model\.onnx: tensor "transformer\.wte\.weight": checkpoint does not fit the model/],
  ])('%s is exit 2 naming it', async (_, file, message) => {
    const r = await align('bert', '--only', 'forward', '--reference', file());
    expect(r.exitCode, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses --reference onnx on a suite without an export, and a bad --ort-threads', async () => {
    const none = await align('megatron-gpt2', '--only', 'forward', '--reference', 'onnx');
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('suite has no ONNX export');
    const threads = await align('bert', '--only', 'forward', '--reference', 'onnx', '--ort-threads', '0');
    expect(threads.exitCode).toBe(2);
  });
});
