/**
 * Which model family a suite folder holds, for folders without a manifest: from the HF
 * `config.json` (src/families/registry.ts knows every family's model_type), else from a
 * Megatron checkpoint folder (whose `args` carry the config; we read the fixture's
 * `hyperparams.json` instead of unpickling a checkpoint just to learn BERT vs GPT).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../errors.ts';
import { FAMILIES, FAMILY_NAMES, familyOfConfig, MODEL_TYPES, type FamilyName } from '../../families/registry.ts';
import { readJsonFile } from '../../json-file.ts';

export function deriveFamily(suiteDir: string): FamilyName {
  const configFile = join(suiteDir, 'config.json');
  if (existsSync(configFile)) return familyFromConfig(readJsonFile(configFile), configFile);
  if (isMegatronFolder(suiteDir)) return megatronFamily(suiteDir);
  throw new InputError('cannot tell the model family: no config.json and no Megatron checkpoint folder; set "family" in manifest.json', {
    file: suiteDir,
    expected: FAMILY_NAMES.join(' | '),
  });
}

function familyFromConfig(config: unknown, file: string): FamilyName {
  const obj = (typeof config === 'object' && config !== null ? config : {}) as Record<string, unknown>;
  const f = familyOfConfig(obj);
  if (f) return f.name;
  throw new InputError('unknown model_type', { file, tensor: 'model_type', expected: MODEL_TYPES.join(' | '), actual: JSON.stringify(obj.model_type) });
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

function megatronFamily(suiteDir: string): FamilyName {
  const folderFamilies = FAMILIES.flatMap((f) => (f.megatron ? [f.megatron.folderFamily] : []));
  const file = join(suiteDir, 'hyperparams.json');
  if (existsSync(file)) {
    const h = readJsonFile(file) as Record<string, unknown>;
    if (typeof h.target === 'string' && folderFamilies.includes(h.target)) return h.target;
    // The fixture generator records which HF fixture's weights the checkpoints hold, by architecture.
    const f = FAMILIES.find((x) => x.megatron && x.arch === h.source_fixture);
    if (f?.megatron) return f.megatron.folderFamily;
  }
  throw new InputError('a Megatron checkpoint folder without a hyperparams.json naming its model; set "family" in manifest.json', {
    file: suiteDir,
    expected: folderFamilies.join(' | '),
  });
}
