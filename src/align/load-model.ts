/**
 * From a suite's config and a checkpoint to a model with its parameters: picks the family from
 * config.json, the weight map from the family and the checkpoint format, and refuses a checkpoint
 * that does not fit unless told otherwise.
 */
import { InputError } from '../errors.ts';
import { bertConfigFromHf, bertModel } from '../models/bert.ts';
import { readJsonObject, type JsonObject } from '../models/hf-config.ts';
import type { Model } from '../models/model.ts';
import { ParamStore } from '../models/params.ts';
import { unionCheckpoint, type Checkpoint } from '../weightmap/checkpoint.ts';
import { applyWeightMap, requireComplete, type MapReport, type WeightMap } from '../weightmap/map.ts';
import { hfBertMap, hfMegatronBertMap } from '../weightmap/maps/hf-bert.ts';
import { hfGpt2Map } from '../weightmap/maps/hf-gpt2.ts';
import { gpt2ConfigFromHf, gpt2Model } from '../models/gpt2.ts';
import { t5ConfigFromHf, t5Model, type T5Config } from '../models/t5.ts';
import { hfT5TiedMap, hfT5UntiedMap } from '../weightmap/maps/hf-t5.ts';
import { megatronBertMap, megatronGptMap } from '../weightmap/maps/megatron.ts';
import { openCheckpoint } from '../weightmap/readers/detect.ts';

export interface LoadedModel {
  model: Model;
  params: ParamStore;
  report: MapReport;
  checkpoint: Checkpoint;
}

export function modelFromConfig(configFile: string): Model {
  const json = readJsonObject(configFile);
  return modelFromConfigJson(json, configFile);
}

export function modelFromConfigJson(json: JsonObject, file: string): Model {
  switch (json.model_type) {
    case 'bert':
    case 'megatron-bert':
      return bertModel(bertConfigFromHf(json, file));
    case 'gpt2':
      return gpt2Model(gpt2ConfigFromHf(json, file));
    case 't5':
      return t5Model(t5ConfigFromHf(json, file));
    default:
      throw new InputError('unsupported model_type', { file, tensor: 'model_type', expected: 'bert | megatron-bert | gpt2 | t5', actual: JSON.stringify(json.model_type) });
  }
}

/**
 * The map for a model family reading a checkpoint of the given format: Megatron's own layout for
 * Megatron directories, else the family's HF layout (safetensors, .bin, ONNX initializers).
 */
export function weightMapFor(model: Model, checkpointFormat = 'safetensors'): WeightMap {
  if (checkpointFormat === 'megatron') {
    if (model.family === 'gpt2') return megatronGptMap;
    if (model.family === 'megatron-bert') return megatronBertMap;
    throw new InputError(`a Megatron checkpoint cannot load a ${model.family} model`, { expected: 'gpt2 or megatron-bert (pre-LN BERT)', actual: model.family });
  }
  switch (model.family) {
    case 'bert':
      return hfBertMap;
    case 'megatron-bert':
      return hfMegatronBertMap;
    case 'gpt2':
      return hfGpt2Map;
    case 't5':
      return (model.config as T5Config).tied ? hfT5TiedMap : hfT5UntiedMap;
    default:
      throw new Error(`no weight map for family ${model.family}`);
  }
}

export interface LoadOptions {
  /** Accept unmapped, missing or mismatched tensors (missing ones then fail at first use). */
  allowIncomplete?: boolean;
}

/** `checkpointPath`: one checkpoint, or several files that together hold it (T5's encoder.onnx and decoder.onnx). */
export function loadParams(model: Model, checkpointPath: string | readonly string[], options: LoadOptions = {}): LoadedModel {
  const checkpoint = typeof checkpointPath === 'string' ? openCheckpoint(checkpointPath) : unionCheckpoint(checkpointPath.map((p) => openCheckpoint(p)));
  const map = weightMapFor(model, checkpoint.format);
  const heads = (model.config as { heads?: number }).heads;
  const { values, report } = applyWeightMap(checkpoint, map, model.specs, { heads });
  if (!options.allowIncomplete) requireComplete(report, checkpoint.path, map.name);
  const specs = options.allowIncomplete ? model.specs.filter((s) => values.has(s.name)) : model.specs;
  return { model, params: new ParamStore(specs, values), report, checkpoint };
}
