/**
 * Sharded HF checkpoints: `model.safetensors.index.json` / `pytorch_model.bin.index.json`
 * (FORMATS.md §3 "Sharding"), `{"metadata": {...}, "weight_map": {param: shard file}}`.
 * The index and the shards must agree exactly: a tensor the index places in a shard that lacks it,
 * a tensor in two shards, or a shard tensor the index omits are all errors, because a loader that
 * trusted either side alone would silently drop or shadow a weight.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, normalize, sep } from 'node:path';
import { InputError } from '../../errors.ts';
import type { Checkpoint, TensorRef } from '../checkpoint.ts';
import { findDuplicateKey, readSafetensors } from './safetensors.ts';
import { readTorchCheckpoint } from './torch.ts';

export type ShardReader = (path: string) => Checkpoint;

const TORCH_EXTENSIONS = new Set(['.bin', '.pt', '.pth']);

/** Picks the reader by the shard's extension; `readShard` overrides it (tests, new formats). */
export function readShardedIndex(indexPath: string, readShard?: ShardReader): Checkpoint {
  const { weightMap, metadata } = readIndex(indexPath);
  const shardFiles = [...new Set(weightMap.values())];
  const kind = shardKind(indexPath, shardFiles);
  const read = readShard ?? (kind === 'safetensors' ? readSafetensors : readTorchCheckpoint);
  const shards = new Map<string, Checkpoint>();
  for (const shard of shardFiles) shards.set(shard, read(shardPath(indexPath, shard)));
  return {
    format: kind === 'safetensors' ? 'safetensors-sharded' : 'torch-sharded',
    path: indexPath,
    tensors: mergeShards(indexPath, weightMap, shards),
    meta: metadata,
  };
}

interface Index {
  weightMap: Map<string, string>;
  metadata: Readonly<Record<string, unknown>>;
}

function readIndex(indexPath: string): Index {
  let text: string;
  try {
    text = readFileSync(indexPath, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'no such file' : 'cannot read index', { file: indexPath, cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`index is not valid JSON: ${(cause as Error).message}`, { file: indexPath, cause });
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(json) || !isObject(json.weight_map)) {
    throw new InputError('index has no weight_map object', { file: indexPath, expected: '{"metadata": {...}, "weight_map": {param: file}}', actual: text.slice(0, 80) });
  }
  // JSON.parse keeps the last of two equal keys: a tensor listed twice would lose one shard silently.
  const dup = findDuplicateKey(text);
  if (dup) {
    throw new InputError('index lists a key twice', { file: indexPath, tensor: dup.key, expected: 'each tensor once', actual: `twice in ${dup.path.join('.') || 'the top level'}` });
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(json.weight_map)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new InputError('weight_map value is not a shard file name', { file: indexPath, tensor: name, expected: 'a file name', actual: JSON.stringify(shard) });
    }
    weightMap.set(name, shard);
  }
  if (json.metadata !== undefined && !isObject(json.metadata)) {
    throw new InputError('index metadata is not an object', { file: indexPath, tensor: 'metadata', expected: 'an object', actual: JSON.stringify(json.metadata) });
  }
  return { weightMap, metadata: (json.metadata as Record<string, unknown> | undefined) ?? {} };
}

function shardKind(indexPath: string, shardFiles: readonly string[]): 'safetensors' | 'torch' {
  const kinds = new Set(shardFiles.map((f) => (extname(f) === '.safetensors' ? 'safetensors' : TORCH_EXTENSIONS.has(extname(f)) ? 'torch' : f)));
  if (kinds.size === 0) return indexPath.endsWith('.bin.index.json') ? 'torch' : 'safetensors';
  const [kind] = kinds;
  if (kinds.size > 1 || (kind !== 'safetensors' && kind !== 'torch')) {
    throw new InputError('shards must all be .safetensors or all torch files', { file: indexPath, expected: '*.safetensors or *.bin/.pt/.pth', actual: shardFiles.join(', ') });
  }
  return kind;
}

/** Shards live next to the index; a path leaving that folder is refused rather than followed. */
function shardPath(indexPath: string, shard: string): string {
  const rel = normalize(shard);
  if (isAbsolute(shard) || rel === '..' || rel.startsWith(`..${sep}`)) {
    throw new InputError('shard path leaves the index folder', { file: indexPath, expected: 'a file name next to the index', actual: shard });
  }
  const path = join(dirname(indexPath), rel);
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    // reported below
  }
  if (!isFile) throw new InputError(`shard ${shard} named in the index does not exist`, { file: indexPath, expected: `a file at ${path}`, actual: 'nothing there' });
  return path;
}

function mergeShards(indexPath: string, weightMap: ReadonlyMap<string, string>, shards: ReadonlyMap<string, Checkpoint>): Map<string, TensorRef> {
  const holders = (name: string) => [...shards].filter(([, ckpt]) => ckpt.tensors.has(name)).map(([shard]) => shard);
  const tensors = new Map<string, TensorRef>();
  for (const [name, shard] of weightMap) {
    const ref = shards.get(shard)!.tensors.get(name);
    if (!ref) {
      const found = holders(name);
      throw new InputError(`index places tensor in ${shard}, which does not hold it`, {
        file: indexPath, tensor: name, expected: `in ${shard}`, actual: found.length ? `in ${found.join(', ')}` : 'in no shard',
      });
    }
    tensors.set(name, ref);
  }
  for (const [shard, ckpt] of shards) {
    for (const name of ckpt.tensors.keys()) {
      const mapped = weightMap.get(name);
      if (mapped === shard) continue;
      throw mapped === undefined
        ? new InputError(`shard ${shard} holds a tensor the index does not list`, { file: indexPath, tensor: name, expected: 'listed in weight_map', actual: `only in ${shard}` })
        : new InputError('tensor appears in two shards', { file: indexPath, tensor: name, expected: `only in ${mapped}`, actual: `in ${mapped} and ${shard}` });
    }
  }
  return tensors;
}
