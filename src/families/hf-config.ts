/**
 * Reading HF config.json fields with HF's own defaults, failing with the file and key named
 * (exit 2). Each family's parser (src/families/<family>.ts) is written with these accessors.
 */
import { InputError } from '../errors.ts';
import type { JsonObject } from '../json-file.ts';
import { ACTIVATIONS, type Activation } from '../layers/activations.ts';

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

  /** An activation by its HF name (`hidden_act`, `activation_function`), from the ones layers/activations.ts implements. */
  activation(key: string, fallback?: Activation): Activation {
    return this.oneOf(key, ACTIVATIONS, fallback);
  }

  /**
   * A key whose only supported value is its HF default (absent, null, or `supported`): anything
   * else would change the computation in a way the model does not implement, so it is refused by
   * name rather than ignored.
   */
  unsupported(key: string, supported: unknown = null, what = 'is not supported'): void {
    const v = this.json[key];
    if (v === undefined || v === null || v === supported) return;
    throw new InputError(`${key} ${what}`, { file: this.file, tensor: key, expected: JSON.stringify(supported), actual: JSON.stringify(v) });
  }

  requireDivisible(key: string, value: number, by: number, byKey: string): void {
    if (value % by !== 0) {
      throw new InputError(`must be divisible by ${byKey} (${by})`, { file: this.file, tensor: key, actual: String(value) });
    }
  }
}
