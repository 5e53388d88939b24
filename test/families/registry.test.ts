/**
 * The family table is the one place that knows families: every shipped suite resolves through it,
 * names and model types are unique, no other source file lists families, and the layers below
 * it never import it (cli -> align -> families | reference -> weightmap -> models -> layers -> backend).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/align/baseline/manifest.ts';
import { ARCHES, FAMILIES, FAMILY_NAMES, familyNamed, MODEL_TYPES, modelFromConfig } from '../../src/families/registry.ts';
import { InputError } from '../../src/errors.ts';
import { modelFromConfigJson } from '../../src/families/registry.ts';
import { BASELINES } from '../support/backend.ts';
import { REPO } from '../support/suite-copy.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const SRC = join(REPO, 'src');

describe('the family table', () => {
  it('has unique names, model types and Megatron folder names', () => {
    const names = FAMILIES.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(MODEL_TYPES).size).toBe(MODEL_TYPES.length);
    expect(FAMILY_NAMES).toEqual(expect.arrayContaining(names));
    for (const name of FAMILY_NAMES) expect(familyNamed(name)).toBeDefined();
    for (const f of FAMILIES) expect(ARCHES).toContain(f.arch);
  });

  it.each(readdirSync(BASELINES).filter((d) => statSync(join(BASELINES, d)).isDirectory()))('shipped suite %s names a family of the table', (suite) => {
    const m = loadManifest(join(BASELINES, suite));
    expect(familyNamed(m.family), m.family).toBeDefined();
  });

  it('builds each HF suite model through the family its model_type names, which stamps its name', () => {
    for (const suite of ['bert', 'gpt2', 't5', 't5v11', 'megatron-bert']) {
      const model = modelFromConfig(join(BASELINES, suite, 'config.json'));
      expect(familyNamed(model.family)?.modelTypes).toContain(JSON.parse(readFileSync(join(BASELINES, suite, 'config.json'), 'utf8')).model_type);
    }
  });

  it('an unknown model_type is an input error that lists every supported one', () => {
    expect(() => modelFromConfigJson({ model_type: 'mamba' }, 'config.json')).toThrow(InputError);
    expect(() => modelFromConfigJson({ model_type: 'mamba' }, 'config.json')).toThrow(new RegExp(`unsupported model_type.*expected ${MODEL_TYPES.join(' \\| ')}`));
  });
});

describe('no other list of families', () => {
  // A line naming two families as string literals is a list of families (a switch, a table, an enum).
  const quoted = new RegExp(`['"\`](${FAMILY_NAMES.map((n) => n.replace(/[-]/g, '\\-')).join('|')})['"\`]`, 'g');
  it('outside src/families, no source line names two families', () => {
    const listing = sources(SRC)
      .filter((f) => !f.startsWith(join(SRC, 'families')))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((line, i) => ({ at: `${relative(REPO, f)}:${i + 1}`, line })))
      .filter(({ line }) => new Set([...line.matchAll(quoted)].map((m) => m[1])).size >= 2)
      .map(({ at, line }) => `${at}: ${line.trim()}`);
    expect(listing).toEqual([]);
  });
});

describe('dependencies point one way', () => {
  const LAYERS = ['cli', 'align', 'families', 'reference', 'weightmap', 'models', 'layers', 'backend'];
  const layerOf = (file: string) => LAYERS.find((l) => file.startsWith(join(SRC, l) + '/'));
  it('no source file imports a layer above its own', () => {
    const upward = sources(SRC).flatMap((file) => {
      const own = layerOf(file);
      if (own === undefined) return [];
      return [...readFileSync(file, 'utf8').matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)]
        .map((m) => m[1])
        .filter((spec) => spec.startsWith('.'))
        .filter((spec) => {
          const target = layerOf(join(file, '..', spec));
          return target !== undefined && LAYERS.indexOf(target) < LAYERS.indexOf(own);
        })
        .map((spec) => `${relative(REPO, file)} imports ${spec}`);
    });
    expect(upward).toEqual([]);
  });
});
