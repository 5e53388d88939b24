/**
 * A suite is a folder laid out like the reference fixtures. This finds its files by the fixture
 * naming conventions, so any folder shaped the same way works, whatever its sizes and step count.
 * Only files that exist are listed; each check says what it lacks.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InputError } from '../errors.ts';

export interface SuiteFiles {
  config?: string;
  /** Initial weights (any checkpoint format the readers accept). */
  weights?: string;
  finalWeights?: string;
  evalInputs?: string;
  forwardInitial?: string;
  forwardFinal?: string;
  /** The same forward records computed in float64 by the reference: its own precision, per element. */
  forwardInitial64?: string;
  forwardFinal64?: string;
  batches?: string;
  hyperparams?: string;
  curve?: string;
  /** The reference training replayed in float64. */
  curve64?: string;
  generationJson?: string;
  generationTensors?: string;
  /** Megatron fixtures: checkpoint variants (folders) and the reference each reproduces. */
  variants?: string;
  /** An ONNX export of the reference model, run live by `--reference onnx`: model.onnx, or encoder.onnx then decoder.onnx. */
  onnx?: string[];
}

export interface Variant {
  /** Checkpoint folder, relative to the suite. */
  dir: string;
  /** Reference forward file, relative to the suite. */
  reference: string;
}

export interface Suite {
  name: string;
  dir: string;
  files: SuiteFiles;
}

const WEIGHT_CANDIDATES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'];

/** `nameOrDir`: a folder, or the name of a shipped suite under `baselinesDir`. */
export function resolveSuiteDir(nameOrDir: string, baselinesDir: string): string {
  if (existsSync(nameOrDir) && statSync(nameOrDir).isDirectory()) return resolve(nameOrDir);
  const shipped = join(baselinesDir, nameOrDir);
  if (!nameOrDir.includes('/') && existsSync(shipped) && statSync(shipped).isDirectory()) return resolve(shipped);
  const available = existsSync(baselinesDir) ? readdirSync(baselinesDir).filter((n) => statSync(join(baselinesDir, n)).isDirectory()) : [];
  throw new InputError('no such suite folder', { file: nameOrDir, expected: `a folder, or one of: ${available.join(', ')}`, actual: 'nothing there' });
}

export function loadSuite(dir: string): Suite {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError('suite folder not found', { file: dir });
  const names = new Set(readdirSync(dir));
  const at = (name: string | undefined) => (name !== undefined && names.has(name) ? join(dir, name) : undefined);
  const matching = (re: RegExp) => [...names].filter((n) => re.test(n)).sort()[0];
  const files: SuiteFiles = {
    config: at('config.json'),
    weights: at(WEIGHT_CANDIDATES.find((n) => names.has(n))) ?? at(matching(/^hf_padded.*\.safetensors$/)),
    finalWeights: at('final_weights.safetensors'),
    evalInputs: at('eval_inputs.safetensors'),
    forwardInitial: at('forward_initial.safetensors') ?? at(matching(/^forward_vpad\d+\.safetensors$/)),
    forwardFinal: at('forward_final.safetensors') ?? at(matching(/^forward_final_vpad\d+\.safetensors$/)),
    forwardInitial64: at('forward_initial.float64.safetensors'),
    forwardFinal64: at('forward_final.float64.safetensors'),
    batches: at('batches.safetensors'),
    hyperparams: at('hyperparams.json'),
    curve: at('train_curve.json'),
    curve64: at('train_curve.float64.json'),
    generationJson: at('generation.json'),
    generationTensors: at('generation.safetensors'),
    variants: at('variants.json'),
    onnx: onnxFiles(names, dir),
  };
  return { name: basename(resolve(dir)), dir: resolve(dir), files };
}

/** The folder convention for ONNX references: model.onnx (decoder-only, encoder-only), or the encoder.onnx + decoder.onnx pair. */
function onnxFiles(names: ReadonlySet<string>, dir: string): string[] | undefined {
  if (names.has('model.onnx')) return [join(dir, 'model.onnx')];
  if (names.has('encoder.onnx') && names.has('decoder.onnx')) return [join(dir, 'encoder.onnx'), join(dir, 'decoder.onnx')];
  return undefined;
}

export function requireFile(suite: Suite, key: Exclude<keyof SuiteFiles, 'onnx'>, what: string): string {
  const file = suite.files[key];
  if (!file) throw new InputError(`suite has no ${what}`, { file: suite.dir, expected: what, actual: 'missing' });
  return file;
}

/** The checkpoint variants a Megatron suite lists in variants.json ({variants: [{dir, reference}]}). */
export function readVariants(suite: Suite): Variant[] {
  const file = suite.files.variants;
  if (!file) return [];
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new InputError('cannot read variants', { file, cause });
  }
  const list = (json as { variants?: unknown }).variants;
  if (!Array.isArray(list)) throw new InputError('expected {"variants": [...]}', { file, tensor: 'variants' });
  return list.map((v, i) => {
    const { dir, reference } = (v ?? {}) as Record<string, unknown>;
    if (typeof dir !== 'string' || typeof reference !== 'string') throw new InputError('each variant needs "dir" and "reference"', { file, tensor: `variants[${i}]` });
    return { dir, reference };
  });
}

/** sha256 of each suite file that exists, by file name: recorded in every verdict. */
export function hashSuiteFiles(suite: Suite): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of Object.values(suite.files).flat()) {
    if (!file) continue;
    out[basename(file)] = createHash('sha256').update(readFileSync(file)).digest('hex');
  }
  return out;
}
