/**
 * Format detection: which reader each path reaches. Routing is checked with stand-in readers (so it
 * does not depend on the torch and Megatron readers), and end to end on the real baseline files.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import type { Checkpoint } from '../../../src/weightmap/checkpoint.ts';
import { detectCheckpoint, openCheckpoint, type CheckpointKind, type Readers } from '../../../src/weightmap/readers/detect.ts';
import { encodeSafetensors } from '../../../src/weightmap/readers/safetensors-writer.ts';

const BASELINES = join(import.meta.dirname, '../../../baselines');
const tmp = mkdtempSync(join(tmpdir(), 'parity-detect-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tinySafetensors = encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array([1]) }]);

/** Builds a file or folder under tmp from a spec: string/Buffer = file, object = folder. */
type Spec = string | Buffer | { [name: string]: Spec };
function make(name: string, spec: Spec, dir = tmp): string {
  const path = join(dir, name);
  if (typeof spec === 'string' || Buffer.isBuffer(spec)) writeFileSync(path, spec);
  else {
    mkdirSync(path);
    for (const [child, sub] of Object.entries(spec)) make(child, sub, path);
  }
  return path;
}

const routes: Array<[label: string, name: string, spec: Spec, kind: CheckpointKind, inside?: string]> = [
  ['safetensors by extension', 'w.safetensors', tinySafetensors, 'safetensors'],
  ['safetensors by header shape, any name', 'weights.dat', tinySafetensors, 'safetensors'],
  ['torch zip by magic', 'weights.pt', Buffer.from('PK\x03\x04rest-of-zip', 'latin1'), 'torch'],
  ['legacy torch pickle by magic', 'weights.pt', Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc]), 'torch'],
  ['safetensors index', 'model.safetensors.index.json', '{}', 'sharded'],
  ['torch index', 'pytorch_model.bin.index.json', '{}', 'sharded'],
  ['ONNX by extension', 'model.onnx', Buffer.from([0x08, 0x07]), 'onnx'],
  ['Megatron folder with tracker', 'ckpt', { 'latest_checkpointed_iteration.txt': '1000', iter_0001000: { mp_rank_00: {} } }, 'megatron'],
  ['Megatron folder with iter_ only', 'ckpt', { iter_0000010: { mp_rank_00: {} } }, 'megatron'],
  ['Megatron folder with release', 'ckpt', { release: { mp_rank_00: {} } }, 'megatron'],
  ['HF folder with model.safetensors', 'hf', { 'model.safetensors': tinySafetensors, 'config.json': '{}' }, 'safetensors', 'model.safetensors'],
  ['HF folder preferring safetensors over .bin', 'hf', { 'pytorch_model.bin': 'PK\x03\x04', 'model.safetensors': tinySafetensors }, 'safetensors', 'model.safetensors'],
  ['HF folder with a safetensors index', 'hf', { 'model.safetensors.index.json': '{}' }, 'sharded', 'model.safetensors.index.json'],
  ['HF folder with pytorch_model.bin', 'hf', { 'pytorch_model.bin': 'PK\x03\x04' }, 'torch', 'pytorch_model.bin'],
  ['HF folder with a torch index', 'hf', { 'pytorch_model.bin.index.json': '{}' }, 'sharded', 'pytorch_model.bin.index.json'],
];

describe('openCheckpoint routing', () => {
  it.each(routes)('%s', (_, name, spec, kind, inside) => {
    const path = make(name, spec, mkdtempSync(join(tmp, 'r-')));
    const calls: Array<[CheckpointKind, string]> = [];
    const stub = (k: CheckpointKind) => (p: string): Checkpoint => {
      calls.push([k, p]);
      return { format: k, path: p, tensors: new Map(), meta: {} };
    };
    const readers = Object.fromEntries((['safetensors', 'sharded', 'torch', 'megatron', 'onnx'] as const).map((k) => [k, stub(k)])) as Readers;
    const ckpt = openCheckpoint(path, readers);
    const target = inside ? join(path, inside) : path;
    expect(calls).toEqual([[kind, target]]);
    expect(detectCheckpoint(path)).toEqual({ kind, path: target });
    expect(ckpt.path).toBe(path);
  });

  it('says "no such file" for a missing path', () => {
    const missing = join(tmp, 'does-not-exist.safetensors');
    let error: unknown;
    try {
      openCheckpoint(missing);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toContain(`${missing}: no such file`);
  });

  it.each([
    ['a text file', 'hello world', /first bytes 68 65 6c 6c 6f 20 77 6f 72 "hello wor"/],
    ['an empty file', '', /\(empty file\)/],
    ['a header length larger than the file', Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]), /ff 00 00 00 00 00 00 00 7b/],
  ])('refuses %s as unknown, naming its first bytes', (_, content, bytes) => {
    const path = make(`unknown-${Math.random().toString(36).slice(2)}.bin`, content);
    expect(() => openCheckpoint(path)).toThrow(InputError);
    expect(() => openCheckpoint(path)).toThrow(bytes);
    expect(() => openCheckpoint(path)).toThrow(path);
  });

  it('refuses a folder with no checkpoint, listing what it looked for', () => {
    const dir = make('empty-folder', { 'config.json': '{}' });
    expect(() => openCheckpoint(dir)).toThrow(InputError);
    expect(() => openCheckpoint(dir)).toThrow(/model\.safetensors.*config\.json/);
  });
});

describe('openCheckpoint on the baseline files', () => {
  it('opens the bert folder through its model.safetensors (47 tensors per the README)', () => {
    const dir = join(BASELINES, 'bert');
    const ckpt = openCheckpoint(dir);
    expect(ckpt.format).toBe('safetensors');
    expect(ckpt.path).toBe(dir);
    expect(ckpt.tensors.size).toBe(47);
    expect(ckpt.tensors.get('bert.embeddings.word_embeddings.weight')!.shape).toEqual([1000, 64]);
  });

  it('opens a safetensors file renamed without its extension', () => {
    const path = join(tmp, 'renamed-gpt2');
    copyFileSync(join(BASELINES, 'gpt2/model.safetensors'), path);
    const ckpt = openCheckpoint(path);
    expect(ckpt.format).toBe('safetensors');
    expect(ckpt.tensors.get('transformer.wte.weight')!.shape).toEqual([1000, 64]);
  });

  it('opens an ONNX export', () => {
    const ckpt = openCheckpoint(join(BASELINES, 't5/encoder.onnx'));
    expect(ckpt.format).toBe('onnx');
    expect(ckpt.tensors.get('shared.weight')!.shape).toEqual([1000, 64]);
  });

  it('routes the real torch and Megatron baselines to their readers', () => {
    expect(detectCheckpoint(join(BASELINES, 'bert/pytorch_model.bin')).kind).toBe('torch');
    expect(detectCheckpoint(join(BASELINES, 'megatron-gpt2/tp1-v3')).kind).toBe('megatron');
    expect(detectCheckpoint(join(BASELINES, 'megatron-gpt2/tp1-v3/iter_0000000/mp_rank_00/model_optim_rng.pt')).kind).toBe('torch');
  });
});
