/**
 * What a model family is to Parity: everything that differs between BERT, GPT-2, T5, LLaMA, … in
 * one object per family (src/families/<family>.ts), registered in the one table of registry.ts
 * that the CLI, the weight maps' users, baselines and reports read. The model itself is built
 * from the shared layers in src/models/; a family adds what the model cannot know: how HF and
 * Megatron describe and store it, and how references name its curve metrics.
 */
import type { JsonObject } from '../json-file.ts';
import type { Model, ModelBody } from '../models/model.ts';
import type { ExportOptions } from '../weightmap/export.ts';
import type { WeightMap } from '../weightmap/map.ts';
import type { MegatronArch, MegatronArgs } from './megatron-args.ts';

export interface Family {
  /** Our name: Model.family, the verdict's `model`, manifest.json's `family`. */
  readonly name: string;
  /** `npm run weightmap --arch`: one HF architecture may hold two families (Megatron BERT is a pre-LN BERT). */
  readonly arch: string;
  /** HF config.json `model_type` values this family reads (none: only reachable another way). */
  readonly modelTypes: readonly string[];
  /** A config.json with no model_type that is recognisably this family's (T5's `feed_forward_proj`). */
  recognises?(json: JsonObject): boolean;
  /** The model from an HF config.json, with HF's class defaults; unsupported keys are an InputError naming the key. */
  fromHfConfig(json: JsonObject, file: string): Model;
  /** The HF checkpoint layout (safetensors, .bin, ONNX initializers) of this model. */
  hfMap(model: Model): WeightMap;
  /** What the rules of the HF map alone cannot say about the names HF writes. */
  hfExportOptions(model: Model, map: WeightMap): ExportOptions;
  /** Megatron-LM legacy checkpoints of this family, where Megatron has the model. */
  readonly megatron?: MegatronSupport;
  /**
   * Our curve metric for each loss Megatron logs by name ("lm loss", "sop loss"), so imported
   * Megatron curves and exported golden values meet our series. Absent: Megatron has no such model.
   */
  readonly megatronLosses?: Readonly<Record<string, string>>;
}

export interface MegatronSupport {
  /** The Megatron model class a checkpoint of this family holds (megatron-args.ts tells them apart). */
  readonly arch: MegatronArch;
  readonly map: WeightMap;
  fromArgs(args: MegatronArgs): Model;
  /**
   * manifest.json's family for a suite folder of Megatron checkpoints without config.json; also
   * accepted wherever a family name is (the shipped `megatron-gpt2` suite holds GPT-2 weights).
   */
  readonly folderFamily: string;
}

/**
 * A family written with its own typed config: `configFromHf` and `build` meet at C, and every
 * other hook receives the config it built. `family()` erases C once, here, so the registry holds
 * plain `Family` objects and nothing else casts a config.
 */
export interface FamilySpec<C> {
  name: string;
  arch: string;
  modelTypes: readonly string[];
  recognises?(json: JsonObject): boolean;
  configFromHf(json: JsonObject, file: string): C;
  build(config: C): ModelBody<C>;
  hfMap(config: C): WeightMap;
  /** Default: `defaultHfExportOptions`. */
  hfExportOptions?(config: C, map: WeightMap): ExportOptions;
  megatron?: {
    arch: MegatronArch;
    map: WeightMap;
    configFromArgs(args: MegatronArgs): C;
    folderFamily?: string;
  };
  megatronLosses?: Readonly<Record<string, string>>;
}

export function family<C>(spec: FamilySpec<C>): Family {
  const build = (config: C): Model => ({ ...spec.build(config), family: spec.name });
  const configOf = (model: Model): C => {
    if (model.family !== spec.name) throw new Error(`family ${spec.name} asked about a ${model.family} model`);
    return model.config as C;
  };
  const megatron = spec.megatron;
  return {
    name: spec.name,
    arch: spec.arch,
    modelTypes: spec.modelTypes,
    recognises: spec.recognises,
    fromHfConfig: (json, file) => build(spec.configFromHf(json, file)),
    hfMap: (model) => spec.hfMap(configOf(model)),
    hfExportOptions: (model, map) => (spec.hfExportOptions ? spec.hfExportOptions(configOf(model), map) : defaultHfExportOptions(map)),
    megatron: megatron && {
      arch: megatron.arch,
      map: megatron.map,
      fromArgs: (args) => build(megatron.configFromArgs(args)),
      folderFamily: megatron.folderFamily ?? spec.name,
    },
    megatronLosses: spec.megatronLosses,
  };
}

/**
 * HF's save_pretrained writes the base model under its `base_model_prefix` (GPT-2's
 * `transformer.`, FORMATS §1.1), which some maps list as optional for reading; only the head
 * (`lm_head.`) sits outside it.
 */
export function defaultHfExportOptions(map: WeightMap): ExportOptions {
  const prefix = map.optionalPrefixes?.[0];
  return prefix ? { prefix: { add: prefix, except: ['lm_head.'] } } : {};
}
