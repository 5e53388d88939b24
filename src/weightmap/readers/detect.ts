/**
 * One entry point for every checkpoint the harness accepts: decides the format from the folder
 * layout, the file name and the first bytes, then hands off to that format's reader.
 */
import { closeSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../errors.ts';
import type { Checkpoint } from '../checkpoint.ts';
import { readMegatronCheckpoint } from './megatron.ts';
import { readOnnxInitializers } from './onnx.ts';
import { MAX_HEADER_BYTES, readSafetensors } from './safetensors.ts';
import { readShardedIndex } from './sharded.ts';
import { readTorchCheckpoint } from './torch.ts';

export type CheckpointKind = 'safetensors' | 'sharded' | 'torch' | 'megatron' | 'onnx';

export type Readers = Record<CheckpointKind, (path: string) => Checkpoint>;

const DEFAULT_READERS: Readers = {
  safetensors: readSafetensors,
  sharded: (path) => readShardedIndex(path),
  torch: readTorchCheckpoint,
  megatron: readMegatronCheckpoint,
  onnx: readOnnxInitializers,
};

/** In a HF model folder, the file `from_pretrained` would load, safest format first. */
const HF_FOLDER_FILES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'];

/** `readers` replaces individual readers (tests; callers with their own torch reader). */
export function openCheckpoint(path: string, readers: Partial<Readers> = {}): Checkpoint {
  const { kind, path: target } = detectCheckpoint(path);
  const ckpt = { ...DEFAULT_READERS, ...readers }[kind](target);
  // Checkpoint.path is the path the user gave, also when it was a folder we looked inside.
  return target === path ? ckpt : { ...ckpt, path };
}

/** Which reader gets which path; pure apart from reading the first bytes. */
export function detectCheckpoint(path: string): { kind: CheckpointKind; path: string } {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (cause) {
    throw new InputError('no such file', { file: path, expected: 'a checkpoint file or folder', actual: 'nothing there', cause });
  }
  return stat.isDirectory() ? detectFolder(path) : { kind: detectFile(path, stat.size), path };
}

function detectFolder(dir: string): { kind: CheckpointKind; path: string } {
  const names = unreadable(dir, () => readdirSync(dir));
  // Megatron's save_checkpoint writes the tracker file plus iter_NNNNNNN/ (or release/) folders.
  const megatron = names.some((n) => n === 'latest_checkpointed_iteration.txt'
    || ((/^iter_\d+$/.test(n) || n === 'release') && statSync(join(dir, n)).isDirectory()));
  if (megatron) return { kind: 'megatron', path: dir };
  const file = HF_FOLDER_FILES.find((n) => names.includes(n));
  if (!file) {
    throw new InputError('folder holds no checkpoint we know', {
      file: dir,
      expected: `${HF_FOLDER_FILES.join(', ')}, or a Megatron latest_checkpointed_iteration.txt / iter_*/ / release/`,
      actual: names.length ? names.slice(0, 8).join(', ') + (names.length > 8 ? ', …' : '') : 'an empty folder',
    });
  }
  const path = join(dir, file);
  return { kind: detectFile(path, statSync(path).size), path };
}

function detectFile(path: string, size: number): CheckpointKind {
  if (path.endsWith('.index.json')) return 'sharded';
  // By name first where the name is unambiguous, so a damaged file gets its reader's precise error.
  if (path.endsWith('.onnx')) return 'onnx';
  if (path.endsWith('.safetensors')) return 'safetensors';
  const head = firstBytes(path, 9);
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'torch'; // zip: torch.save ≥ 1.6
  if (head[0] === 0x80 && head[1] === 0x02) return 'torch'; // pickle protocol 2: legacy torch.save
  if (looksLikeSafetensors(head, size)) return 'safetensors';
  throw new InputError('unknown checkpoint format', {
    file: path,
    expected: 'safetensors, *.index.json, torch zip (PK\\x03\\x04) or legacy pickle (\\x80\\x02), Megatron folder, .onnx',
    actual: `first bytes ${describeBytes(head)}`,
  });
}

/** A plausible u64 header length that fits the file, followed by "{". */
function looksLikeSafetensors(head: Uint8Array, size: number): boolean {
  if (head.byteLength < 9) return false;
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  return n >= 2n && n <= BigInt(MAX_HEADER_BYTES) && 8n + n <= BigInt(size) && head[8] === 0x7b;
}

/** Permission and I/O errors become InputErrors naming the path, like every other unusable input. */
function unreadable<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (cause) {
    throw new InputError(`cannot read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { file: path, cause });
  }
}

function firstBytes(path: string, count: number): Uint8Array {
  const fd = unreadable(path, () => openSync(path, 'r'));
  try {
    const buf = new Uint8Array(count);
    return buf.subarray(0, readSync(fd, buf, 0, count, 0));
  } finally {
    closeSync(fd);
  }
}

function describeBytes(bytes: Uint8Array): string {
  if (bytes.byteLength === 0) return '(empty file)';
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = [...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `${hex} "${text}"`;
}
