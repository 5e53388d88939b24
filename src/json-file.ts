/** Reading JSON files with errors that name the file (exit 2), and hashing what was read. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InputError } from './errors.ts';

export function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new InputError('cannot read file', { file, cause });
  }
}

export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    // Python's json.dumps writes NaN/Infinity as bare tokens that JSON.parse refuses; say so
    // instead of reporting a syntax error at some column.
    if (/\b(NaN|-?Infinity)\b/.test(text)) {
      throw new InputError('contains NaN or Infinity, which JSON (and a baseline) may not hold', { file, cause });
    }
    throw new InputError('is not valid JSON', { file, cause });
  }
}

export function readJsonFile(file: string): unknown {
  return parseJson(readBytes(file).toString('utf8'), file);
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** "a.b[2].c" from a zod issue path, for messages that point at the key to fix. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '(top level)' : out;
}

/** The first zod issue as "key <path>: <what is wrong>"; an unknown key is named itself, not its parent. */
export function describeZodIssue(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string; code?: string; keys?: string[] }> }, prefix: readonly PropertyKey[] = []): string {
  const issue = error.issues[0];
  if (issue.code === 'unrecognized_keys' && issue.keys && issue.keys.length > 0) {
    return `key ${formatKeyPath([...prefix, ...issue.path, issue.keys[0]])}: unknown key (misspelt?)`;
  }
  return `key ${formatKeyPath([...prefix, ...issue.path])}: ${issue.message}`;
}

export type JsonObject = Record<string, unknown>;

/** A JSON file that must hold an object (config.json, hyperparams.json). */
export function readJsonObject(file: string): JsonObject {
  const json = readJsonFile(file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError('expected a JSON object', { file });
  return json as JsonObject;
}
