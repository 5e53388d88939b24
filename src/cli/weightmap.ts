/**
 * npm run weightmap -- <checkpoint> [--arch ARCH] [--config config.json] [--to parity|hf]
 *                      [--out FILE.safetensors] [--vocab-size N] [--json FILE] [--allow-incomplete]
 * Shows how every tensor of a checkpoint maps onto our model, and optionally writes it converted.
 * Exit 0 complete, 1 incomplete (unmapped, missing or mismatched tensors), 2 unusable input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EXIT_MISALIGNED, EXIT_PASS, InputError } from '../errors.ts';
import type { Model } from '../models/model.ts';
import type { Checkpoint } from '../weightmap/checkpoint.ts';
import { shapeString } from '../weightmap/checkpoint.ts';
import { chooseModel, isArch } from '../families/choose-model.ts';
import { ARCHES, hfExportMap, hfExportOptions, weightMapFor } from '../families/registry.ts';
import { exportToHf, megatronVocabSize, trimVocabulary, type ExportedTensor, type ExportModel } from '../weightmap/export.ts';
import { applyWeightMap, isComplete, type MapReport, type MapRow } from '../weightmap/map.ts';
import { openCheckpoint } from '../weightmap/readers/detect.ts';
import { writeSafetensors } from '../weightmap/readers/safetensors-writer.ts';
import { parseCli, runCli } from './run-cli.ts';

const USAGE = `usage: npm run weightmap -- <checkpoint file|folder> [--arch ${ARCHES.join('|')}] [--config config.json] [--to parity|hf] [--out FILE.safetensors] [--vocab-size N] [--json FILE] [--allow-incomplete]`;

type Target = 'parity' | 'hf';

interface Options {
  checkpoint: string;
  arch?: string;
  config?: string;
  to: Target;
  out?: string;
  json?: string;
  vocabSize?: number;
  allowIncomplete: boolean;
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_PASS;
  }
  const ckpt = openCheckpoint(options.checkpoint);
  const { model, arch, configSource } = chooseModel(ckpt, { config: options.config, arch: options.arch });
  const map = weightMapFor(model, ckpt.format);
  const { values, report } = applyWeightMap(ckpt, map, model.specs, { heads: headsOf(model) });
  const complete = isComplete(report);

  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`checkpoint ${ckpt.path} (${ckpt.format}, ${ckpt.tensors.size} tensors)`);
  say(`model      ${model.family} (--arch ${arch}) from ${configSource}; map ${map.name}`);
  say('');
  for (const line of formatRows(report, ckpt)) say(line);
  say('');
  say(summaryLine(report));

  let output: Record<string, unknown> | undefined;
  if (options.out !== undefined) {
    if (!complete && !options.allowIncomplete) {
      say(`not writing ${options.out}: the mapping is incomplete (pass --allow-incomplete to write what mapped)`);
      output = { file: options.out, to: options.to, written: false };
    } else {
      output = writeConverted(options, ckpt, model, values);
      say(`wrote ${options.out}: ${String(output.tensors)} tensors, ${String(output.layout)}`);
    }
  }

  if (options.json !== undefined) {
    const doc = {
      format: ckpt.format,
      checkpoint: ckpt.path,
      arch,
      family: model.family,
      config: configSource,
      map: map.name,
      complete,
      tensors: report.rows,
      unmapped: report.unmapped,
      missing: report.missing,
      mismatched: report.mismatched,
      ...(output ? { output } : {}),
    };
    writeFileSync(options.json, `${JSON.stringify(doc, null, 2)}\n`);
  }
  return complete ? EXIT_PASS : EXIT_MISALIGNED;
}

/** null means --help. */
function parseOptions(argv: string[]): Options | null {
  const { values: v, positionals } = parseCli({
    args: argv,
    allowPositionals: true,
    options: {
      arch: { type: 'string' },
      config: { type: 'string' },
      to: { type: 'string', default: 'parity' },
      out: { type: 'string' },
      json: { type: 'string' },
      'vocab-size': { type: 'string' },
      'allow-incomplete': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }, USAGE);
  if (v.help) return null;
  if (positionals.length !== 1) throw new InputError(`expected one checkpoint file or folder, got ${positionals.length}\n${USAGE}`);
  if (v.arch !== undefined && !isArch(v.arch)) throw new InputError('unknown --arch', { expected: ARCHES.join(' | '), actual: v.arch });
  if (v.to !== 'parity' && v.to !== 'hf') throw new InputError('unknown --to', { expected: 'parity | hf', actual: v.to });
  if (v.out !== undefined && !v.out.endsWith('.safetensors')) throw new InputError('--out writes safetensors', { file: v.out, expected: 'a file name ending in .safetensors', actual: v.out });
  let vocabSize: number | undefined;
  if (v['vocab-size'] !== undefined) {
    vocabSize = Number(v['vocab-size']);
    if (!Number.isInteger(vocabSize) || vocabSize <= 0) throw new InputError('--vocab-size must be a positive integer', { actual: v['vocab-size'] });
    // Trimming only makes sense for the HF file being written; our own layout keeps Megatron's V_pad.
    if (v.to !== 'hf' || v.out === undefined) throw new InputError('--vocab-size trims the vocabulary of an HF export; use it with --to hf --out FILE');
  }
  if (v.out === undefined && v.to === 'hf') throw new InputError('--to hf says which layout --out writes; pass --out FILE.safetensors');
  return {
    checkpoint: positionals[0],
    arch: v.arch,
    config: v.config,
    to: v.to,
    out: v.out,
    json: v.json,
    vocabSize,
    allowIncomplete: v['allow-incomplete'],
  };
}

function headsOf(model: Model): number | undefined {
  return (model.config as { heads?: number }).heads;
}

/** Writes --out in the asked layout; returns what the JSON report says about it. */
function writeConverted(options: Options, ckpt: Checkpoint, model: Model, values: Map<string, Float32Array>): Record<string, unknown> {
  const out = options.out as string;
  if (resolve(out) === resolve(ckpt.path)) throw new InputError('--out would overwrite the checkpoint being read', { file: out });
  let tensors: ExportedTensor[];
  let layout: string;
  const info: Record<string, unknown> = { file: out, to: options.to, written: true };
  if (options.to === 'parity') {
    // Our names and layout ([in,out] kernels, q/k/v apart), in model order; absent ones only with --allow-incomplete.
    tensors = model.specs.filter((s) => values.has(s.name)).map((s) => ({ name: s.name, shape: [...s.shape], data: values.get(s.name) as Float32Array }));
    layout = `Parity layout (${model.family})`;
  } else {
    const map = hfExportMap(model);
    let exportValues: ReadonlyMap<string, Float32Array> = values;
    let exportModel: ExportModel = model;
    if (ckpt.format === 'megatron') {
      const vocab = megatronVocabSize(ckpt.meta.args as Record<string, unknown> | undefined, options.vocabSize);
      const padded = model.specs.find((s) => s.name === 'embeddings.word')?.shape[0];
      if (vocab.size === null) {
        process.stderr.write(`warning: keeping all ${String(padded)} padded vocabulary rows: ${vocab.why}; pass --vocab-size N to trim them as HF's converters do\n`);
      } else {
        ({ values: exportValues, model: exportModel } = trimVocabulary(values, model, vocab.size));
      }
      info.vocab = { padded, kept: vocab.size ?? padded, why: vocab.why };
    } else if (options.vocabSize !== undefined) {
      throw new InputError('--vocab-size trims Megatron\'s padded vocabulary; this checkpoint has none', { file: ckpt.path, expected: 'a Megatron folder', actual: ckpt.format });
    }
    tensors = exportToHf(exportValues, exportModel, map, hfExportOptions(model, map));
    info.map = map.name;
    layout = `HF layout (${map.name} map${info.vocab ? `, vocabulary ${(info.vocab as { kept: number }).kept} of ${String((info.vocab as { padded: number }).padded)} rows` : ''})`;
  }
  try {
    mkdirSync(dirname(out), { recursive: true });
    writeSafetensors(out, tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: t.data })));
  } catch (cause) {
    if (cause instanceof InputError) throw cause;
    throw new InputError(`cannot write (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { file: out, cause });
  }
  return { ...info, tensors: tensors.length, layout };
}

// ---------------------------------------------------------------------------------------------
// Text report: one line per source tensor, then a summary.

const STATUS_ORDER: Record<MapRow['status'], number> = { mapped: 0, dropped: 1, unmapped: 2, mismatched: 3 };

function formatRows(report: MapReport, ckpt: Checkpoint): string[] {
  const bySource = new Map<string, MapRow[]>();
  for (const row of report.rows) bySource.set(row.source, [...(bySource.get(row.source) ?? []), row]);
  const lines = [...bySource].map(([source, rows]) => {
    // A split source (c_attn, query_key_value) has one row per target; the worst status speaks for it.
    const status = rows.reduce((a, r) => (STATUS_ORDER[r.status] > STATUS_ORDER[a] ? r.status : a), rows[0].status);
    const targets = rows.map((r) => r.target).filter((t): t is string => t !== null);
    const sourceShape = ckpt.tensors.get(source)?.shape ?? rows[0].shape;
    return [source, targets.length ? `→ ${braceJoin(targets)}` : '→ -', rows[0].transform, shapeColumn(sourceShape, rows), statusText(status, source, rows, report)];
  });
  const header = ['source', '  target', 'transform', 'shape', 'status'];
  const widths = header.map((h, k) => Math.max(h.length, ...lines.map((l) => l[k].length)));
  const pad = (cols: string[]) => cols.map((c, k) => (k === cols.length - 1 ? c : c.padEnd(widths[k]))).join('  ');
  return [pad(header), ...lines.map(pad)];
}

/** `layers.0.attn.q.weight, layers.0.attn.k.weight, …` -> `layers.0.attn.{q,k,v}.weight`. */
function braceJoin(names: string[]): string {
  if (names.length === 1) return names[0];
  const split = names.map((n) => n.split('.'));
  const len = split[0].length;
  if (!split.every((s) => s.length === len)) return names.join(', ');
  const differing = [...Array(len).keys()].filter((k) => split.some((s) => s[k] !== split[0][k]));
  if (differing.length !== 1) return names.join(', ');
  const k = differing[0];
  return [...split[0].slice(0, k), `{${split.map((s) => s[k]).join(',')}}`, ...split[0].slice(k + 1)].join('.');
}

function shapeColumn(sourceShape: readonly number[], rows: MapRow[]): string {
  const src = shapeString(sourceShape);
  const mapped = rows.filter((r) => r.status === 'mapped' || r.status === 'mismatched').map((r) => shapeString(r.shape));
  if (mapped.length === 0 || (mapped.length === 1 && mapped[0] === src)) return src;
  const same = mapped.every((s) => s === mapped[0]);
  return `${src} → ${same ? (mapped.length > 1 ? `${mapped.length}×${mapped[0]}` : mapped[0]) : mapped.join(', ')}`;
}

function statusText(status: MapRow['status'], source: string, rows: MapRow[], report: MapReport): string {
  if (status === 'mismatched') {
    const m = report.mismatched.find((x) => x.source === source);
    return m ? `mismatched (expected ${m.expected}, got ${m.actual})` : 'mismatched';
  }
  const note = rows.find((r) => r.note)?.note;
  return note ? `${status} (${note})` : status;
}

function summaryLine(report: MapReport): string {
  const count = (s: MapRow['status']) => new Set(report.rows.filter((r) => r.status === s).map((r) => r.source)).size;
  const sources = new Set(report.rows.map((r) => r.source)).size;
  const first = (xs: string[]) => (xs.length ? ` (${xs.slice(0, 3).join('; ')}${xs.length > 3 ? `; … ${xs.length} in all` : ''})` : '');
  const unmapped = [...new Set(report.unmapped)];
  const mismatched = report.mismatched.map((m) => `${m.source} -> ${m.target} expected ${m.expected}, got ${m.actual}`);
  const verdict = isComplete(report) ? 'complete' : 'INCOMPLETE';
  return `summary: ${sources} source tensors, ${count('mapped')} mapped, ${count('dropped')} dropped; `
    + `unmapped ${unmapped.length}${first(unmapped)}, missing ${report.missing.length}${first(report.missing)}, `
    + `mismatched ${report.mismatched.length}${first(mismatched)}: ${verdict}`;
}

runCli(main);
