/**
 * Reading HF config.json fields with HF's own defaults, failing with the file and key named.
 * Each family's parser lives beside its model; this holds only the typed accessors.
 */
import { InputError } from '../errors.ts';
import { readJsonFile } from '../json-file.ts';

export type JsonObject = Record<string, unknown>;

export function readJsonObject(file: string): JsonObject {
  const json = readJsonFile(file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError('expected a JSON object', { file });
  return json as JsonObject;
}

export class ConfigReader {
  constructor(
    readonly json: JsonObject,
    readonly file: string,
  ) {}

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new InputError('config value must be a non-negative integer', { file: this.file, tensor: key, actual: JSON.stringify(v) });
    }
    return v;
  }

  positive(key: string, fallback?: number): number {
    const v = this.int(key, fallback);
    if (v === 0) throw new InputError('config value must be positive', { file: this.file, tensor: key, actual: '0' });
    return v;
  }

  float(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new InputError('config value must be a finite number', { file: this.file, tensor: key, actual: JSON.stringify(v) });
    }
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'string') throw new InputError('config value must be a string', { file: this.file, tensor: key, actual: JSON.stringify(v) });
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'boolean') throw new InputError('config value must be true or false', { file: this.file, tensor: key, actual: JSON.stringify(v) });
    return v;
  }

  /** Fails unless `value` is one of `allowed`; names what we do support. */
  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.string(key, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new InputError('unsupported config value', { file: this.file, tensor: key, expected: allowed.join(' | '), actual: v });
    }
    return v as T;
  }

  requireDivisible(key: string, value: number, by: number, byKey: string): void {
    if (value % by !== 0) {
      throw new InputError(`must be divisible by ${byKey} (${by})`, { file: this.file, tensor: key, actual: String(value) });
    }
  }
}
