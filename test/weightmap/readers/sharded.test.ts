/**
 * Sharded checkpoints: bert's model.safetensors split into 3 shards with our writer, read back
 * through an index and compared with the unsplit file; then indexes that disagree with their shards.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.ts';
import { inMemoryTensor, type Checkpoint } from '../../../src/weightmap/checkpoint.ts';
import { readSafetensors } from '../../../src/weightmap/readers/safetensors.ts';
import { writeSafetensors } from '../../../src/weightmap/readers/safetensors-writer.ts';
import { readShardedIndex } from '../../../src/weightmap/readers/sharded.ts';

const SOURCE = join(import.meta.dirname, '../../../baselines/bert/model.safetensors');
const tmp = mkdtempSync(join(tmpdir(), 'parity-shards-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const original = readSafetensors(SOURCE);
const names = [...original.tensors.keys()].sort();
const shardName = (i: number) => `model-0000${i + 1}-of-00003.safetensors`;
/** Round-robin: every shard gets tensors of every kind, including the I64 position_ids. */
const shardOf = new Map(names.map((n, i) => [n, i % 3]));

function writeShard(dir: string, file: string, tensorNames: readonly string[]): void {
  writeSafetensors(join(dir, file), tensorNames.map((n) => {
    const t = original.tensors.get(n)!;
    return t.dtype === 'I64'
      ? { name: n, dtype: 'I64' as const, shape: t.shape, data: BigInt64Array.from(t.toInt32(), (v) => BigInt(v)) }
      : { name: n, dtype: 'F32' as const, shape: t.shape, data: t.toFloat32() };
  }));
}

/** A folder with 3 shards and an index; `edit` may change the weight map or shard contents first. */
function shardedDir(edit: { weightMap?: (m: Record<string, string>) => void; extra?: Record<number, string[]>; drop?: string[]; indexText?: (t: string) => string } = {}): string {
  const dir = mkdtempSync(join(tmp, 'ckpt-'));
  for (let s = 0; s < 3; s++) {
    const mine = names.filter((n) => shardOf.get(n) === s && !edit.drop?.includes(n));
    writeShard(dir, shardName(s), [...mine, ...(edit.extra?.[s] ?? [])]);
  }
  const weightMap = Object.fromEntries(names.map((n) => [n, shardName(shardOf.get(n)!)]));
  edit.weightMap?.(weightMap);
  const text = JSON.stringify({ metadata: { total_size: 728_488 + 512 }, weight_map: weightMap }, null, 2);
  writeFileSync(join(dir, 'model.safetensors.index.json'), edit.indexText ? edit.indexText(text) : text);
  return join(dir, 'model.safetensors.index.json');
}

describe('readShardedIndex', () => {
  it('reads 3 shards back into the original checkpoint, bit for bit', () => {
    const index = shardedDir();
    const ckpt = readShardedIndex(index);
    expect(ckpt.format).toBe('safetensors-sharded');
    expect(ckpt.path).toBe(index);
    expect(ckpt.meta).toEqual({ total_size: 729_000 });
    expect([...ckpt.tensors.keys()].sort()).toEqual(names);
    for (const name of names) {
      const a = original.tensors.get(name)!;
      const b = ckpt.tensors.get(name)!;
      expect([b.dtype, ...b.shape]).toEqual([a.dtype, ...a.shape]);
      expect(b.file.endsWith(shardName(shardOf.get(name)!))).toBe(true);
      const av = a.toFloat32();
      const bv = b.toFloat32();
      expect(Buffer.from(bv.buffer, bv.byteOffset, bv.byteLength).equals(Buffer.from(av.buffer, av.byteOffset, av.byteLength)), name).toBe(true);
    }
  });

  it('reads torch shards through the given reader and calls the result torch-sharded', () => {
    const dir = mkdtempSync(join(tmp, 'torch-'));
    const shards = ['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin'];
    for (const s of shards) writeFileSync(join(dir, s), 'stand-in');
    const index = join(dir, 'pytorch_model.bin.index.json');
    writeFileSync(index, JSON.stringify({ metadata: { total_size: 12 }, weight_map: { a: shards[0], b: shards[1] } }));
    const seen: string[] = [];
    const fake = (path: string): Checkpoint => {
      seen.push(path);
      const name = path.endsWith(shards[0]) ? 'a' : 'b';
      return { format: 'torch-zip', path, meta: {}, tensors: new Map([[name, inMemoryTensor(name, [1], new Float32Array([name === 'a' ? 1 : 2]), path)]]) };
    };
    const ckpt = readShardedIndex(index, fake);
    expect(ckpt.format).toBe('torch-sharded');
    expect(seen.sort()).toEqual(shards.map((s) => join(dir, s)));
    expect([...ckpt.tensors.get('b')!.toFloat32()]).toEqual([2]);
  });

  it('reads a torch index with the torch reader by default (bert pytorch_model.bin as its one shard)', () => {
    const dir = mkdtempSync(join(tmp, 'real-torch-'));
    const shard = 'pytorch_model-00001-of-00001.bin';
    copyFileSync(join(SOURCE, '../pytorch_model.bin'), join(dir, shard));
    // The README: the .bin holds every safetensors tensor plus the tied aliases save_pretrained drops.
    const readme = readFileSync(join(SOURCE, '../README.md'), 'utf8');
    const tied = [...readme.split('## Tied weights')[1].split('##')[0].matchAll(/^- `([^`]+)` ->/gm)].map((m) => m[1]);
    expect(tied).toHaveLength(2);
    const index = join(dir, 'pytorch_model.bin.index.json');
    writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: Object.fromEntries([...names, ...tied].map((n) => [n, shard])) }));
    const ckpt = readShardedIndex(index);
    expect(ckpt.format).toBe('torch-sharded');
    expect(ckpt.tensors.size).toBe(names.length + tied.length);
    const a = original.tensors.get('bert.embeddings.word_embeddings.weight')!.toFloat32();
    const b = ckpt.tensors.get('cls.predictions.decoder.weight')!.toFloat32();
    expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength))).toBe(true);
  });

  const failures: Array<[string, () => string, RegExp, string?]> = [
    ['a shard file is missing', () => shardedDir({ weightMap: (m) => { m[names[0]] = 'model-00009-of-00003.safetensors'; } }), /model-00009-of-00003\.safetensors named in the index does not exist/],
    ['the index places a tensor in the wrong shard', () => shardedDir({ weightMap: (m) => { m[names[0]] = shardName(1); } }), /does not hold it/, names[0]],
    ['a tensor is in two shards', () => shardedDir({ extra: { 2: [names[0]] } }), /appears in two shards/, names[0]],
    ['a shard holds a tensor the index omits', () => shardedDir({ weightMap: (m) => { delete m[names[4]]; } }), /does not list/, names[4]],
    ['the index lists a tensor no shard holds', () => shardedDir({ drop: [names[5]] }), /in no shard/, names[5]],
    ['the index lists a tensor twice', () => shardedDir({ indexText: (t) => t.replace(`"${names[1]}": "${shardName(1)}"`, `"${names[1]}": "${shardName(1)}", "${names[1]}": "${shardName(1)}"`) }), /lists a key twice/, names[1]],
    ['the index is not JSON', () => shardedDir({ indexText: (t) => t.slice(0, 50) }), /not valid JSON/],
    ['the index has no weight_map', () => shardedDir({ indexText: () => '{"metadata": {}}' }), /no weight_map/],
    ['a weight_map value is not a string', () => shardedDir({ weightMap: (m) => { (m as Record<string, unknown>)[names[0]] = 3; } }), /not a shard file name/, names[0]],
    ['a shard path leaves the folder', () => shardedDir({ weightMap: (m) => { m[names[0]] = `../${shardName(0)}`; } }), /leaves the index folder/],
    ['shards mix formats', () => shardedDir({ weightMap: (m) => { m[names[0]] = 'x.bin'; } }), /must all be \.safetensors or all torch/],
  ];

  it.each(failures)('refuses an index where %s', (_, make, message, tensor) => {
    const index = make();
    let error: unknown;
    try {
      readShardedIndex(index);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    const e = error as InputError;
    expect(e.file).toBe(index);
    expect(e.message).toContain(index);
    expect(e.message).toMatch(message);
    if (tensor) expect(e.tensor).toBe(tensor);
  });

  it('names the index when it does not exist', () => {
    const missing = join(tmp, 'missing.index.json');
    expect(() => readShardedIndex(missing)).toThrow(`${missing}: no such file`);
  });
});
