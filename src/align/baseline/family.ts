/**
 * Which model family a suite folder holds, for folders without a manifest: from the HF
 * `config.json` (`model_type`, or `feed_forward_proj` which only T5 configs carry), else from a
 * Megatron checkpoint folder (whose `args` carry the config; we read the fixture's
 * `hyperparams.json` instead of unpickling a checkpoint just to learn BERT vs GPT).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../errors.ts';
import { readJsonFile } from '../../json-file.ts';

export const FAMILIES = ['bert', 'gpt2', 't5', 'megatron-bert', 'megatron-gpt2'] as const;
export type Family = (typeof FAMILIES)[number];

/** HF `model_type` → family. T5 v1.1 and mT5 share T5's code path (gated GELU is a config switch). */
const MODEL_TYPES: Readonly<Record<string, Family>> = {
  bert: 'bert',
  gpt2: 'gpt2',
  t5: 't5',
  mt5: 't5',
  'megatron-bert': 'megatron-bert',
};

export function isFamily(value: unknown): value is Family {
  return typeof value === 'string' && (FAMILIES as readonly string[]).includes(value);
}

export function deriveFamily(suiteDir: string): Family {
  const configFile = join(suiteDir, 'config.json');
  if (existsSync(configFile)) return familyFromConfig(readJsonFile(configFile), configFile);
  if (isMegatronFolder(suiteDir)) return megatronFamily(suiteDir);
  throw new InputError('cannot tell the model family: no config.json and no Megatron checkpoint folder; set "family" in manifest.json', {
    file: suiteDir,
    expected: FAMILIES.join(' | '),
  });
}

function familyFromConfig(config: unknown, file: string): Family {
  const obj = (typeof config === 'object' && config !== null ? config : {}) as Record<string, unknown>;
  const modelType = obj.model_type;
  if (typeof modelType === 'string' && modelType in MODEL_TYPES) return MODEL_TYPES[modelType];
  if (modelType === undefined && typeof obj.feed_forward_proj === 'string') return 't5';
  throw new InputError('unknown model_type', {
    file,
    tensor: 'model_type',
    expected: Object.keys(MODEL_TYPES).join(' | '),
    actual: JSON.stringify(modelType),
  });
}

/** A Megatron checkpoint folder has variant subfolders with a `latest_checkpointed_iteration.txt` tracker. */
function isMegatronFolder(suiteDir: string): boolean {
  if (existsSync(join(suiteDir, 'latest_checkpointed_iteration.txt'))) return true;
  let entries: string[];
  try {
    entries = readdirSync(suiteDir);
  } catch (cause) {
    throw new InputError('cannot read suite folder', { file: suiteDir, cause });
  }
  return entries.some((e) => existsSync(join(suiteDir, e, 'latest_checkpointed_iteration.txt')));
}

function megatronFamily(suiteDir: string): Family {
  const file = join(suiteDir, 'hyperparams.json');
  if (existsSync(file)) {
    const h = readJsonFile(file) as Record<string, unknown>;
    if (isFamily(h.target) && h.target.startsWith('megatron-')) return h.target;
    // The fixture generator records which HF fixture's weights the checkpoints hold.
    if (h.source_fixture === 'bert') return 'megatron-bert';
    if (h.source_fixture === 'gpt2') return 'megatron-gpt2';
  }
  throw new InputError('a Megatron checkpoint folder without a hyperparams.json naming its model; set "family" in manifest.json', {
    file: suiteDir,
    expected: 'megatron-bert | megatron-gpt2',
  });
}
