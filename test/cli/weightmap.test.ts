/**
 * `npm run weightmap` as a user runs it: exit 0 complete / 1 incomplete / 2 unusable input, the
 * JSON contract, and the files --out writes. Oracles are the shipped files: each HF suite's
 * model.safetensors, the Megatron fixtures' HF weights (READMEs of baselines/megatron-*), and the
 * aliases FORMATS §1.1 says a .bin keeps. Outputs go to temp folders, never into baselines/.
 * Excluded from comparisons: `bert.embeddings.position_ids` (int64 buffer, not a weight; FORMATS §1.1).
 */
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/weightmap/readers/safetensors-writer.ts';
import { BASELINES } from '../support/backend.ts';
import { expectSameTensors, readRawSafetensors } from '../support/raw-safetensors.ts';
import { REPO, tempDir, TSX } from '../support/suite-copy.ts';

const work = tempDir('parity-weightmap-');
afterAll(() => work.cleanup());
let counter = 0;
const tmp = (name: string) => join(work.dir, `${counter++}-${name}`);

const weightmap = (args: string[]) => execa(TSX, ['src/cli/weightmap.ts', ...args], { cwd: REPO, reject: false });

interface Report {
  format: string;
  arch: string;
  map: string;
  tensors: Array<{ source: string; target: string | null; transform: string; shape: number[]; status: string; note?: string }>;
  unmapped: string[];
  missing: string[];
  mismatched: Array<{ source: string; target: string; expected: string; actual: string }>;
  output?: { written: boolean };
}

const readJson = (file: string): Report => JSON.parse(readFileSync(file, 'utf8'));

const POSITION_IDS = 'bert.embeddings.position_ids';

/** What each file must show as dropped: buffers and, in .bin files, the tied aliases (FORMATS §1.1). */
const DROPPED: Record<string, string[]> = {
  'bert/model.safetensors': [POSITION_IDS],
  'bert/pytorch_model.bin': [POSITION_IDS, 'cls.predictions.decoder.weight', 'cls.predictions.decoder.bias'],
  'gpt2/model.safetensors': [],
  'gpt2/pytorch_model.bin': ['lm_head.weight'],
  't5/model.safetensors': [],
  't5/pytorch_model.bin': ['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight', 'lm_head.weight'], // v1.0: tied head
  't5v11/model.safetensors': [],
  't5v11/pytorch_model.bin': ['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight'], // v1.1: lm_head is its own weight
  'llama/model.safetensors': [],
  'llama/pytorch_model.bin': [], // untied head; transformers 4.33 no longer saves the rotary inv_freq buffer
  'roberta/model.safetensors': [],
  'roberta/pytorch_model.bin': ['lm_head.decoder.weight', 'lm_head.decoder.bias'],
  'vit/model.safetensors': [],
  'vit/pytorch_model.bin': [],
};

describe.concurrent('weightmap CLI: shipped HF checkpoints', () => {
  it.each(Object.entries(DROPPED))('%s maps completely (exit 0); aliases and buffers are dropped', async (file, dropped) => {
    const json = tmp('report.json');
    const r = await weightmap([join('baselines', file), '--json', json]);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = readJson(json);
    expect(report).toMatchObject({ arch: file.startsWith('t5') ? 't5' : file.split('/')[0], unmapped: [], missing: [], mismatched: [] });
    expect(report.format).toBe(file.endsWith('.bin') ? 'torch-zip' : 'safetensors');
    expect(report.tensors.filter((t) => t.status === 'dropped').map((t) => t.source).sort()).toEqual([...dropped].sort());
    expect(report.tensors.every((t) => t.status === 'mapped' || t.status === 'dropped')).toBe(true);
    // Every tensor of the file has a row (one per target for split sources).
    const names = file.endsWith('.safetensors') ? [...readRawSafetensors(join(BASELINES, file)).keys()] : null;
    if (names) expect(new Set(report.tensors.map((t) => t.source))).toEqual(new Set(names));
    expect(r.stdout).toMatch(/summary: .*unmapped 0, missing 0, mismatched 0: complete/);
    for (const d of dropped) expect(r.stdout).toMatch(new RegExp(`^${d.replaceAll('.', '\\.')} .*dropped \\(`, 'm'));
  });

  it.each(['bert', 'gpt2', 't5', 't5v11', 'llama', 'roberta', 'vit'])('%s: --to hf --out reproduces model.safetensors', async (suite) => {
    const out = tmp(`${suite}.safetensors`);
    const r = await weightmap([join('baselines', suite, 'model.safetensors'), '--to', 'hf', '--out', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expectSameTensors(readRawSafetensors(out), join(BASELINES, suite, 'model.safetensors'), suite === 'bert' ? [POSITION_IDS] : []);
  });

  it('--to parity (the default) writes our names and layout: q is the transposed HF query weight', async () => {
    const out = tmp('bert-parity.safetensors');
    const r = await weightmap(['baselines/bert', '--out', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const ours = readRawSafetensors(out);
    const hf = readRawSafetensors(join(BASELINES, 'bert/model.safetensors'));
    expect(ours.has('bert.embeddings.word_embeddings.weight')).toBe(false);
    const q = ours.get('layers.0.attn.q.weight');
    const query = hf.get('bert.encoder.layer.0.attention.self.query.weight');
    expect(q?.shape).toEqual([64, 64]);
    const a = new Float32Array(q!.bytes.buffer.slice(q!.bytes.byteOffset, q!.bytes.byteOffset + q!.bytes.byteLength));
    const b = new Float32Array(query!.bytes.buffer.slice(query!.bytes.byteOffset, query!.bytes.byteOffset + query!.bytes.byteLength));
    // torch Linear [out,in] -> Dense kernel [in,out]: ours[i][o] = hf[o][i]
    for (let i = 0; i < 64; i++) for (let o = 0; o < 64; o++) expect(a[i * 64 + o]).toBe(b[o * 64 + i]);
  });
});

const GPT_VARIANTS = ['tp2-v3', 'tp1-v0', 'tp1-v1', 'pp2-v3', 'tp1-v3-norm'];

describe.concurrent('weightmap CLI: Megatron -> HF', () => {
  it.each(GPT_VARIANTS)('megatron-gpt2/%s: --to hf trims to the 1000-id vocabulary and equals the HF GPT-2 fixture', async (variant) => {
    const out = tmp(`${variant}.safetensors`);
    const json = tmp(`${variant}.json`);
    const r = await weightmap([`baselines/megatron-gpt2/${variant}`, '--to', 'hf', '--out', out, '--json', json]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readJson(json)).toMatchObject({ format: 'megatron', arch: 'gpt2', map: 'megatron-gpt', output: { written: true, vocab: { padded: 1024, kept: 1000 } } });
    expectSameTensors(readRawSafetensors(out), join(BASELINES, 'gpt2/model.safetensors'));
  });

  it.each(GPT_VARIANTS)('megatron-gpt2/%s: --vocab-size 1024 keeps the padded rows and equals hf_padded_vpad1024', async (variant) => {
    const out = tmp(`${variant}-padded.safetensors`);
    const r = await weightmap([`baselines/megatron-gpt2/${variant}`, '--to', 'hf', '--out', out, '--vocab-size', '1024']);
    expect(r.exitCode, r.stderr).toBe(0);
    expectSameTensors(readRawSafetensors(out), join(BASELINES, 'megatron-gpt2/hf_padded_vpad1024.safetensors'));
  });

  it('megatron-bert/tp2-v3 (config from args): keeps V_pad 1024 with a warning and equals hf_padded_vpad1024', async () => {
    const out = tmp('mbert.safetensors');
    const r = await weightmap(['baselines/megatron-bert/tp2-v3', '--to', 'hf', '--out', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Megatron args/);
    expect(r.stderr).toMatch(/warning: keeping all 1024 padded vocabulary rows.*BertWordPieceLowerCase/);
    expectSameTensors(readRawSafetensors(out), join(BASELINES, 'megatron-bert/hf_padded_vpad1024.safetensors'), [POSITION_IDS]);
  });

  it('megatron-bert/tp2-v3 --vocab-size 1000: the vocabulary tensors are the first 1000 rows of hf_padded_vpad1024', async () => {
    const out = tmp('mbert-1000.safetensors');
    const r = await weightmap(['baselines/megatron-bert/tp2-v3', '--to', 'hf', '--out', out, '--vocab-size', '1000']);
    expect(r.exitCode, r.stderr).toBe(0);
    const got = readRawSafetensors(out);
    const ref = readRawSafetensors(join(BASELINES, 'megatron-bert/hf_padded_vpad1024.safetensors'));
    const word = got.get('bert.embeddings.word_embeddings.weight');
    const bias = got.get('cls.predictions.bias');
    expect(word?.shape).toEqual([1000, 64]);
    expect(bias?.shape).toEqual([1000]);
    expect(word?.bytes.equals(ref.get('bert.embeddings.word_embeddings.weight')!.bytes.subarray(0, 1000 * 64 * 4))).toBe(true);
    expect(bias?.bytes.equals(ref.get('cls.predictions.bias')!.bytes.subarray(0, 1000 * 4))).toBe(true);
  });
});

/** A BERT folder: config.json plus model.safetensors with tensors added, removed or replaced. */
function bertFolder(edit: (tensors: Map<string, { dtype: string; shape: number[]; bytes: Buffer }>) => void): string {
  const dir = tmp('bert');
  const tensors = readRawSafetensors(join(BASELINES, 'bert/model.safetensors'));
  edit(tensors);
  mkdirSync(dir);
  copyFileSync(join(BASELINES, 'bert/config.json'), join(dir, 'config.json'));
  writeSafetensors(join(dir, 'model.safetensors'), [...tensors].map(([name, t]) => ({ name, dtype: t.dtype as 'F32', shape: t.shape, data: new Uint8Array(t.bytes) })));
  return dir;
}

describe.concurrent('weightmap CLI: incomplete mappings exit 1', () => {
  it('an extra unknown tensor is unmapped; --out then writes nothing unless --allow-incomplete', async () => {
    const dir = bertFolder((t) => t.set('bert.encoder.layer.0.adapter.weight', { dtype: 'F32', shape: [2], bytes: Buffer.alloc(8) }));
    const json = tmp('extra.json');
    const out = tmp('extra.safetensors');
    const r = await weightmap([dir, '--json', json, '--out', out]);
    expect(r.exitCode).toBe(1);
    expect(readJson(json)).toMatchObject({ unmapped: ['bert.encoder.layer.0.adapter.weight'], missing: [], mismatched: [], output: { written: false } });
    expect(r.stdout).toMatch(/unmapped 1 \(bert\.encoder\.layer\.0\.adapter\.weight\)/);
    expect(r.stdout).toMatch(/not writing/);
    expect(existsSync(out)).toBe(false);
    const forced = await weightmap([dir, '--out', out, '--allow-incomplete']);
    expect(forced.exitCode).toBe(1);
    expect(readRawSafetensors(out).has('layers.0.attn.q.weight')).toBe(true);
  });

  it('a missing tensor leaves our parameter missing', async () => {
    const dir = bertFolder((t) => t.delete('bert.pooler.dense.bias'));
    const json = tmp('missing.json');
    const r = await weightmap([dir, '--json', json]);
    expect(r.exitCode).toBe(1);
    expect(readJson(json)).toMatchObject({ unmapped: [], missing: ['pooler.bias'], mismatched: [] });
    expect(r.stdout).toMatch(/missing 1 \(pooler\.bias\)/);
  });

  it('a config with another intermediate size: mismatched, naming the tensor, expected and actual shapes', async () => {
    const config = tmp('config.json');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(join(BASELINES, 'bert/config.json'), 'utf8')), intermediate_size: 128 }));
    const json = tmp('mismatch.json');
    const r = await weightmap(['baselines/bert/model.safetensors', '--config', config, '--json', json]);
    expect(r.exitCode).toBe(1);
    const report = readJson(json);
    expect(report.mismatched).toContainEqual({ source: 'bert.encoder.layer.0.intermediate.dense.weight', target: 'layers.0.mlp.fc_in.weight', expected: '[64,128]', actual: '[64,256]' });
    expect(report.mismatched).toContainEqual({ source: 'bert.encoder.layer.1.output.dense.weight', target: 'layers.1.mlp.fc_out.weight', expected: '[128,64]', actual: '[256,64]' });
    expect(r.stdout).toMatch(/bert\.encoder\.layer\.0\.intermediate\.dense\.weight -> layers\.0\.mlp\.fc_in\.weight expected \[64,128\], got \[64,256\]/);
  });
});

describe.concurrent('weightmap CLI: unusable input exits 2', () => {
  it.each([
    ['model.safetensors', 5000, /header runs past the end/], // inside the JSON header
    ['model.safetensors', 700_000, /tensor runs past the end/], // inside the tensor data
    ['pytorch_model.bin', 600_000, /truncated or not a zip/], // the zip's central directory is gone
  ])('a truncated %s (%i bytes), naming the file', async (file, size, message) => {
    const dir = tmp('truncated');
    mkdirSync(dir);
    copyFileSync(join(BASELINES, 'bert/config.json'), join(dir, 'config.json'));
    copyFileSync(join(BASELINES, 'bert', file), join(dir, file));
    truncateSync(join(dir, file), size);
    const r = await weightmap([join(dir, file)]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(join(dir, file));
    expect(r.stderr).toMatch(message);
  });

  it('no configuration anywhere', async () => {
    const dir = tmp('noconfig');
    mkdirSync(dir);
    copyFileSync(join(BASELINES, 'bert/model.safetensors'), join(dir, 'model.safetensors'));
    const r = await weightmap([join(dir, 'model.safetensors')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/pass --config/);
  });

  it.each([
    ['--arch gpt2 on a BERT config', ['baselines/bert/model.safetensors', '--arch', 'gpt2'], /--arch contradicts.*expected bert, got gpt2/],
    ['--arch t5 on a Megatron GPT', ['baselines/megatron-gpt2/tp1-v3', '--arch', 't5'], /--arch contradicts.*expected gpt2, got t5/],
    ['an unknown --arch', ['baselines/bert', '--arch', 'mamba'], /unknown --arch/],
    ['an unknown --to', ['baselines/bert', '--to', 'onnx', '--out', 'x.safetensors'], /unknown --to/],
    ['--vocab-size without an HF export', ['baselines/megatron-gpt2/tp1-v3', '--vocab-size', '1000'], /--vocab-size trims/],
    ['--vocab-size on an HF checkpoint', ['baselines/gpt2', '--to', 'hf', '--out', tmp('never.safetensors'), '--vocab-size', '900'], /has none/],
    ['--vocab-size above the padded size', ['baselines/megatron-gpt2/tp1-v3', '--to', 'hf', '--out', tmp('never.safetensors'), '--vocab-size', '2048'], /expected 1\.\.1024/],
    ['no checkpoint', [], /expected one checkpoint/],
    ['a missing checkpoint', ['baselines/nope.safetensors'], /baselines\/nope\.safetensors: no such file/],
  ])('%s', async (_label, args, message) => {
    const r = await weightmap(args);
    expect(r.exitCode, r.stdout).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('a config without model_type needs --arch, which then supplies it', async () => {
    const { model_type: _, ...rest } = JSON.parse(readFileSync(join(BASELINES, 'gpt2/config.json'), 'utf8'));
    const config = tmp('config.json');
    writeFileSync(config, JSON.stringify(rest));
    const without = await weightmap(['baselines/gpt2/model.safetensors', '--config', config]);
    expect(without.exitCode).toBe(2);
    expect(without.stderr).toMatch(/no model_type; pass --arch/);
    const withArch = await weightmap(['baselines/gpt2/model.safetensors', '--config', config, '--arch', 'gpt2']);
    expect(withArch.exitCode, withArch.stderr).toBe(0);
  });
});
