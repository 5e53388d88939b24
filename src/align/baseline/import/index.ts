/**
 * `baseline import`: parse a foreign curve (Megatron golden values or stdout log, HF
 * trainer_state.json, CSV, txt) onto our 0-based steps and store it in the suite as
 * `references/<name>.json`, registered in manifest.json and logged in history.jsonl.
 * Order of writes: reference file, manifest, history — each durable before the next, so a crash
 * leaves at worst an unregistered reference file, never a manifest pointing at nothing.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../../errors.ts';
import { writeFileAtomic } from '../atomic.ts';
import { appendHistory, timestamp } from '../history.ts';
import { readBytes, sha256 } from '../../../json-file.ts';
import { loadManifest, registerReference, type ReferenceEntry } from '../manifest.ts';
import { displayPath } from '../paths.ts';
import { REFERENCE_NAME, type ImportFormat } from '../reference-format.ts';
import { REFERENCES_DIR, serializeReference, type ReferenceFile } from '../reference-file.ts';
import { parseCsv } from './csv.ts';
import { parseHfTrainerState } from './hf-trainer-state.ts';
import { parseMegatronGolden } from './megatron-golden.ts';
import { parseMegatronLog } from './megatron-log.ts';
import type { ImportedSeries, ImportOptions } from './series.ts';
import { parseTxt } from './txt.ts';

export const PARSERS: Readonly<Record<ImportFormat, (text: string, file: string, opts: ImportOptions) => ImportedSeries>> = {
  'megatron-golden': parseMegatronGolden,
  'megatron-log': parseMegatronLog,
  'hf-trainer-state': parseHfTrainerState,
  csv: parseCsv,
  txt: parseTxt,
};

export interface ImportRequest {
  file: string;
  format: ImportFormat;
  suiteDir: string;
  name?: string;
  metric?: string;
  lrLogged?: 'next' | 'used';
  stepBase?: number;
  interval?: number;
  /** Replace a reference of the same name. */
  force: boolean;
}

export interface ImportResult {
  file: string;
  reference: ReferenceFile;
  warnings: string[];
}

export function importReference(req: ImportRequest): ImportResult {
  const manifest = loadManifest(req.suiteDir);
  const bytes = readBytes(req.file);
  const series = PARSERS[req.format](bytes.toString('utf8'), req.file, {
    metric: req.metric,
    family: manifest.family,
    lrLogged: req.lrLogged,
    stepBase: req.stepBase,
    interval: req.interval,
  });
  const name = req.name ?? defaultName(req.format, series.metric);
  if (!REFERENCE_NAME.test(name)) {
    throw new InputError('--name must be a plain file name', { expected: REFERENCE_NAME.source, actual: JSON.stringify(name) });
  }
  const relFile = `${REFERENCES_DIR}/${name}.json`;
  const path = join(req.suiteDir, relFile);
  if (!req.force && (manifest.references.some((r) => r.name === name) || existsSync(path))) {
    throw new InputError(`a reference named ${JSON.stringify(name)} exists; choose another --name or replace it with --force`, { file: path });
  }
  const importedAt = timestamp();
  const reference: ReferenceFile = {
    schema: 1,
    name,
    format: req.format,
    metric: series.metric,
    ours: series.ours,
    source: { file: displayPath(req.file), sha256: sha256(bytes) },
    interval: series.interval,
    stepBase: series.stepBase,
    printedAfterSchedulerStep: series.printedAfterSchedulerStep,
    rounding: series.rounding,
    ...(series.megatron ? { megatron: series.megatron } : {}),
    importedAt,
    warnings: series.warnings,
    curve: { steps: series.steps, metrics: { [series.ours]: series.values } },
  };
  const entry: ReferenceEntry = {
    name,
    file: relFile,
    format: req.format,
    metric: series.metric,
    ours: series.ours,
    interval: series.interval,
    importedAt,
  };
  mkdirSync(join(req.suiteDir, REFERENCES_DIR), { recursive: true });
  writeFileAtomic(path, serializeReference(reference));
  registerReference(req.suiteDir, entry);
  appendHistory(req.suiteDir, {
    when: importedAt,
    action: 'import',
    name,
    format: req.format,
    metric: series.metric,
    ours: series.ours,
    points: series.steps.length,
    interval: series.interval,
    source: reference.source,
    ...(req.force ? { forced: true } : {}),
  });
  return { file: path, reference, warnings: series.warnings };
}

function defaultName(format: ImportFormat, metric: string): string {
  const slug = metric.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${format}-${slug || 'metric'}`;
}

