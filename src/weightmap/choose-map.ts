/**
 * Which model a checkpoint is for, and which maps read and write it: the model configuration from
 * `--config`, a config.json beside the checkpoint, or a Megatron folder's own `args`; `--arch`
 * only fills in or cross-checks the family. The map that reads the checkpoint depends on its
 * format; the map that writes HF files depends on the family alone.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { modelFromConfigJson, weightMapFor } from '../align/load-model.ts';
import { InputError } from '../errors.ts';
import { megatronArch, modelFromMegatron } from '../models/megatron-args.ts';
import { readJsonObject } from '../models/hf-config.ts';
import type { Model } from '../models/model.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { ExportOptions } from './export.ts';
import type { WeightMap } from './map.ts';

export const ARCHES = ['bert', 'gpt2', 't5'] as const;
export type Arch = (typeof ARCHES)[number];

export function isArch(value: string): value is Arch {
  return (ARCHES as readonly string[]).includes(value);
}

/** Our family -> the user-facing architecture (Megatron BERT is a pre-LN BERT). */
export function archOfFamily(family: string): Arch {
  if (family === 'bert' || family === 'megatron-bert') return 'bert';
  if (family === 'gpt2' || family === 't5') return family;
  throw new Error(`no architecture for family ${family}`);
}

export interface ChosenModel {
  model: Model;
  arch: Arch;
  /** Where the configuration came from: a config.json path, or "<checkpoint> (Megatron args)". */
  configSource: string;
}

/**
 * The model to map `ckpt` onto. Order: `--config`, then config.json beside the file (or inside
 * the folder), then a Megatron folder's `args`. Refuses when nothing describes the model: guessing
 * hidden sizes from tensor shapes would hide exactly the mismatches this tool exists to report.
 */
export function chooseModel(ckpt: Checkpoint, options: { config?: string; arch?: Arch }): ChosenModel {
  const configFile = options.config ?? configBeside(ckpt.path);
  if (configFile !== undefined) {
    const json = readJsonObject(configFile);
    if (json.model_type === undefined || json.model_type === null) {
      // A hand-written config may omit model_type; then --arch is what says the family.
      if (!options.arch) throw new InputError('config.json has no model_type; pass --arch bert|gpt2|t5', { file: configFile, tensor: 'model_type' });
      json.model_type = options.arch;
    }
    const model = modelFromConfigJson(json, configFile);
    crossCheckArch(options.arch, archOfFamily(model.family), configFile);
    return { model, arch: archOfFamily(model.family), configSource: configFile };
  }
  if (ckpt.format === 'megatron') {
    const arch: Arch = megatronArch(ckpt) === 'gpt' ? 'gpt2' : 'bert';
    crossCheckArch(options.arch, arch, `${ckpt.path} (Megatron args)`);
    return { model: modelFromMegatron(ckpt), arch, configSource: `${ckpt.path} (Megatron args)` };
  }
  throw new InputError('no model configuration: no config.json beside the checkpoint; pass --config config.json', {
    file: ckpt.path,
    expected: 'a config.json beside the checkpoint, --config FILE, or a Megatron folder with args',
    actual: 'none found',
  });
}

/** config.json inside a checkpoint folder, or in the folder holding a checkpoint file. */
export function configBeside(checkpointPath: string): string | undefined {
  const dir = isDirectory(checkpointPath) ? checkpointPath : dirname(checkpointPath);
  const file = join(dir, 'config.json');
  return existsSync(file) ? file : undefined;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function crossCheckArch(asked: Arch | undefined, found: Arch, where: string): void {
  if (asked !== undefined && asked !== found) {
    throw new InputError('--arch contradicts the model configuration', { file: where, expected: found, actual: asked });
  }
}

/** The map that reads this checkpoint: Megatron's layout for Megatron folders, else the family's HF layout. */
export function sourceMap(model: Model, checkpointFormat: string): WeightMap {
  return weightMapFor(model, checkpointFormat);
}

/**
 * The HF layout `--to hf` writes: the family's own HF map, whatever the source format (a Megatron
 * GPT becomes HF GPT-2, a Megatron BERT HF MegatronBert — the targets of HF's own converters).
 */
export function hfExportMap(model: Model): WeightMap {
  return weightMapFor(model, 'safetensors');
}

/**
 * What the map rules alone cannot say about HF's on-disk names:
 *  - GPT2LMHeadModel.save_pretrained writes the base model under its `base_model_prefix`
 *    (`transformer.`, FORMATS §1.1); the map lists that prefix as optional for reading. Only the
 *    head (`lm_head.`) sits outside it.
 *  - T5 v1.1's gated MLP is saved as wi_0/wi_1; the map also reads v1.0's `wi` into the same
 *    parameter, so the gated spelling must be preferred when the model is gated.
 */
export function hfExportOptions(model: Model, map: WeightMap): ExportOptions {
  const options: ExportOptions = {};
  const prefix = map.optionalPrefixes?.[0];
  if (prefix) options.prefix = { add: prefix, except: ['lm_head.'] };
  if (model.family === 't5' && (model.config as { gated?: boolean }).gated) {
    options.prefer = map.rules.map((r) => r.from).filter((from) => /\.DenseReluDense\.wi_[01]\.weight$/.test(from));
  }
  return options;
}
