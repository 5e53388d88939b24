/**
 * Which model a checkpoint is for (npm run weightmap): the model configuration from `--config`,
 * a config.json beside the checkpoint, or a Megatron folder's own `args`; `--arch` only fills in
 * or cross-checks the family. The map that reads the checkpoint depends on its format; the map
 * that writes HF files depends on the family alone (registry.ts: weightMapFor, hfExportMap).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.ts';
import { readJsonObject } from '../json-file.ts';
import type { Model } from '../models/model.ts';
import type { Checkpoint } from '../weightmap/checkpoint.ts';
import { ARCHES, familyOf, familyOfMegatron, FAMILIES, modelFromConfigJson, modelFromMegatron } from './registry.ts';

export interface ChosenModel {
  model: Model;
  /** The user-facing architecture (`--arch`) of the model's family. */
  arch: string;
  /** Where the configuration came from: a config.json path, or "<checkpoint> (Megatron args)". */
  configSource: string;
}

export function isArch(value: string): boolean {
  return ARCHES.includes(value);
}

/**
 * The model to map `ckpt` onto. Order: `--config`, then config.json beside the file (or inside
 * the folder), then a Megatron folder's `args`. Refuses when nothing describes the model: guessing
 * hidden sizes from tensor shapes would hide exactly the mismatches this tool exists to report.
 */
export function chooseModel(ckpt: Checkpoint, options: { config?: string; arch?: string }): ChosenModel {
  const configFile = options.config ?? configBeside(ckpt.path);
  if (configFile !== undefined) {
    const json = readJsonObject(configFile);
    if (json.model_type === undefined || json.model_type === null) {
      // A hand-written config may omit model_type; then --arch is what says the family.
      if (!options.arch) throw new InputError(`config.json has no model_type; pass --arch ${ARCHES.join('|')}`, { file: configFile, tensor: 'model_type' });
      // The architecture's plain HF model (bert, not megatron-bert) is the family an --arch names.
      json.model_type = FAMILIES.find((f) => f.name === options.arch)?.modelTypes[0] ?? options.arch;
    }
    const model = modelFromConfigJson(json, configFile);
    const arch = familyOf(model).arch;
    crossCheckArch(options.arch, arch, configFile);
    return { model, arch, configSource: configFile };
  }
  if (ckpt.format === 'megatron') {
    const where = `${ckpt.path} (Megatron args)`;
    const { arch } = familyOfMegatron(ckpt);
    crossCheckArch(options.arch, arch, where);
    return { model: modelFromMegatron(ckpt), arch, configSource: where };
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

function crossCheckArch(asked: string | undefined, found: string, where: string): void {
  if (asked !== undefined && asked !== found) {
    throw new InputError('--arch contradicts the model configuration', { file: where, expected: found, actual: asked });
  }
}
