/**
 * The one table of model families. The align and weightmap CLIs, suite manifests and baselines
 * (metric names, Megatron folders) find families here, and verdicts and reports carry the names it
 * gives; adding a family is adding its module and a line to FAMILIES.
 */
import { InputError } from '../errors.ts';
import { readJsonObject, type JsonObject } from '../json-file.ts';
import type { Model } from '../models/model.ts';
import type { Checkpoint } from '../weightmap/checkpoint.ts';
import type { ExportOptions } from '../weightmap/export.ts';
import type { WeightMap } from '../weightmap/map.ts';
import { bert } from './bert.ts';
import type { Family, MegatronSupport } from './family.ts';
import { gpt2 } from './gpt2.ts';
import { llama } from './llama.ts';
import { megatronArch, MegatronArgs } from './megatron-args.ts';
import { megatronBert } from './megatron-bert.ts';
import { roberta } from './roberta.ts';
import { t5 } from './t5.ts';
import { vit } from './vit.ts';

export const FAMILIES: readonly Family[] = [bert, megatronBert, gpt2, t5, llama, roberta, vit];

/** A family's name as manifests and the verdict's `model` spell it. */
export type FamilyName = string;

/** Every name a manifest may give: each family's own, and the family of its Megatron checkpoint folders. */
export const FAMILY_NAMES: readonly FamilyName[] = [...new Set(FAMILIES.flatMap((f) => [f.name, ...(f.megatron ? [f.megatron.folderFamily] : [])]))];

/** `npm run weightmap --arch` values. */
export const ARCHES: readonly string[] = [...new Set(FAMILIES.map((f) => f.arch))];

/** HF `model_type` values some family reads. */
export const MODEL_TYPES: readonly string[] = FAMILIES.flatMap((f) => f.modelTypes);

/** The family a name (or a Megatron folder family) stands for. */
export function familyNamed(name: FamilyName): Family | undefined {
  return FAMILIES.find((f) => f.name === name) ?? FAMILIES.find((f) => f.megatron?.folderFamily === name);
}

/** The family that built `model`. */
export function familyOf(model: Model): Family {
  const f = FAMILIES.find((x) => x.name === model.family);
  if (!f) throw new Error(`no family ${model.family} in the registry`);
  return f;
}

/** The family of an HF config.json: by `model_type`, or, without one, by what only that family's configs carry. */
export function familyOfConfig(json: JsonObject): Family | undefined {
  const modelType = json.model_type;
  if (typeof modelType === 'string') return FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (modelType === undefined) return FAMILIES.find((f) => f.recognises?.(json));
  return undefined;
}

export function modelFromConfig(configFile: string): Model {
  return modelFromConfigJson(readJsonObject(configFile), configFile);
}

export function modelFromConfigJson(json: JsonObject, file: string): Model {
  const f = familyOfConfig(json);
  if (!f) throw new InputError('unsupported model_type', { file, tensor: 'model_type', expected: MODEL_TYPES.join(' | '), actual: JSON.stringify(json.model_type) });
  return f.fromHfConfig(json, file);
}

/** The family that reads the Megatron model (GPT or BERT) a checkpoint holds. */
export function familyOfMegatron(ckpt: Checkpoint): Family & { megatron: MegatronSupport } {
  const arch = megatronArch(ckpt);
  const f = FAMILIES.find((x) => x.megatron?.arch === arch);
  if (!f?.megatron) throw new InputError(`no family reads Megatron ${arch.toUpperCase()} checkpoints`, { file: ckpt.path });
  return f as Family & { megatron: MegatronSupport };
}

/** The model a Megatron checkpoint's own `args` describe. */
export function modelFromMegatron(ckpt: Checkpoint): Model {
  return familyOfMegatron(ckpt).megatron.fromArgs(MegatronArgs.of(ckpt));
}

/**
 * The map for a model reading a checkpoint of the given format: Megatron's own layout for
 * Megatron directories, else the family's HF layout (safetensors, .bin, ONNX initializers).
 */
export function weightMapFor(model: Model, checkpointFormat = 'safetensors'): WeightMap {
  const f = familyOf(model);
  if (checkpointFormat !== 'megatron') return f.hfMap(model);
  if (f.megatron) return f.megatron.map;
  const readers = FAMILIES.filter((x) => x.megatron).map((x) => x.name);
  throw new InputError(`a Megatron checkpoint cannot load a ${model.family} model`, { expected: readers.join(' or '), actual: model.family });
}

/**
 * The HF layout `--to hf` writes: the family's own HF map, whatever the source format (a Megatron
 * GPT becomes HF GPT-2, a Megatron BERT HF MegatronBert — the targets of HF's own converters).
 */
export function hfExportMap(model: Model): WeightMap {
  return familyOf(model).hfMap(model);
}

export function hfExportOptions(model: Model, map: WeightMap): ExportOptions {
  return familyOf(model).hfExportOptions(model, map);
}
