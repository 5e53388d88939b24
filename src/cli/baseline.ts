/**
 * `npm run baseline -- <command> …`: the only way a suite's baselines change.
 *   bless  <suite> --from <run folder> --reason "…" [--force] [--baselines DIR]
 *   import <file> --format megatron-golden|megatron-log|hf-trainer-state|csv|txt --into <suite>
 *          [--metric NAME] [--name N] [--lr-logged next|used] [--step-base 0|1] [--interval N] [--force]
 *   export <suite> --format megatron-golden [--form dict|list] [--source reference|golden:<backend>|<name>]
 *          [--metric NAME[,NAME…]] [--interval N] [--decimals N|full] --out FILE
 *   calibrate <suite> [--steps N] [--runs K] [--json FILE] [--write] [--backend NAME] [--baselines DIR]
 * Exit codes: 0 done, 2 unusable input (a flag, a file; the message names it), 70 internal fault.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { bless, requireReason } from '../align/baseline/bless.ts';
import { writeFileAtomic } from '../align/baseline/atomic.ts';
import { calibrate, calibrationJson, DEFAULT_RUNS, formatCalibration, SAFETY, writeCalibration } from '../align/baseline/calibrate.ts';
import { exportMegatronGolden } from '../align/baseline/export.ts';
import { importReference } from '../align/baseline/import/index.ts';
import { IMPORT_FORMATS, type ImportFormat } from '../align/baseline/reference-format.ts';
import { DEFAULT_BASELINES_DIR, resolveSuiteDir } from '../align/baseline/suite.ts';
import { selectBackend } from '../backend/select.ts';
import { EXIT_PASS, InputError, exitCodeOf } from '../errors.ts';
import { progressReporter } from './progress.ts';

const USAGE = `usage: npm run baseline -- <command> …

  bless <suite> --from <run folder> --reason "why" [--force] [--baselines DIR]
      Make the run's curve.json the golden of its backend (golden.<backend>.json), atomically,
      and log the change in history.jsonl. Refuses a failed run unless --force.

  import <file> --format ${IMPORT_FORMATS.join('|')} --into <suite>
         [--metric NAME] [--name N] [--force]
         [--lr-logged next|used]   hf-trainer-state learning_rate: next (transformers ≤ 4.50) or used (≥ 4.51)
         [--step-base 0|1]         csv: what the step column counts from
         [--interval N]            csv/txt: steps averaged per value
      Store a foreign curve as references/<N>.json and register it in manifest.json.

  export <suite> --format megatron-golden --out FILE [--form dict|list]
         [--source reference|golden:<backend>|<imported name>] [--metric NAME[,NAME…]]
         [--interval N] [--decimals N|full]
      Write Megatron functional-test golden values.

  calibrate <suite> [--steps N] [--runs K] [--json FILE] [--write] [--backend NAME]
      Measure the float32 noise floor of the training curve on this backend: 1 unperturbed run
      and K (default ${DEFAULT_RUNS}) runs whose initial weights are kicked by one ulp; propose
      tolerances.curve = ${SAFETY} × the largest spread. --write puts them in manifest.json and logs
      the change in history.jsonl.

<suite> is a name under the baselines folder (--baselines, default ${DEFAULT_BASELINES_DIR}/) or a path.
Megatron iteration I (1-based) is our step I−1 (0-based); see baselines/README.md.`;

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (cause) {
    // node:util reports unknown flags and missing values as TypeErrors: they are usage errors.
    throw new InputError(`${(cause as Error).message}\n\n${USAGE}`, { cause });
  }
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) {
    throw new InputError(`expected exactly one ${what}`, { expected: `one ${what}`, actual: positionals.length === 0 ? 'none' : positionals.join(' ') });
  }
  return positionals[0];
}

function str(values: Values, flag: string): string | undefined {
  const v = values[flag];
  return typeof v === 'string' ? v : undefined;
}

function required(values: Values, flag: string): string {
  const v = str(values, flag);
  if (v === undefined || v.trim() === '') throw new InputError(`--${flag} is required`);
  return v;
}

function oneOf<T extends string>(values: Values, flag: string, choices: readonly T[]): T | undefined {
  const v = str(values, flag);
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) throw new InputError(`--${flag} must be one of ${choices.join(', ')}`, { expected: choices.join(' | '), actual: v });
  return v as T;
}

function wholeNumber(values: Values, flag: string, min: number): number | undefined {
  const v = str(values, flag);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new InputError(`--${flag} must be a whole number ≥ ${min}`, { actual: v });
  return Number(v);
}

function warn(lines: readonly string[]): void {
  for (const w of lines) process.stderr.write(`warning: ${w}\n`);
}

function runBless(args: string[]): number {
  const { values, positionals } = parse(args, {
    from: { type: 'string' },
    reason: { type: 'string' },
    force: { type: 'boolean', default: false },
    baselines: { type: 'string' },
  });
  const suite = one(positionals, 'suite');
  // The reason comes first: without one nothing else matters.
  const reason = requireReason(str(values, 'reason'));
  const runDir = required(values, 'from');
  const suiteDir = resolveSuiteDir(suite, str(values, 'baselines'));
  const result = bless({ suiteDir, runDir, reason, force: values.force === true });
  process.stdout.write(`blessed ${result.file} (${result.golden.steps} steps from ${result.golden.fromRun})\n${String(result.history.summary)}\n`);
  return EXIT_PASS;
}

function runImport(args: string[]): number {
  const { values, positionals } = parse(args, {
    format: { type: 'string' },
    into: { type: 'string' },
    metric: { type: 'string' },
    name: { type: 'string' },
    'lr-logged': { type: 'string' },
    'step-base': { type: 'string' },
    interval: { type: 'string' },
    force: { type: 'boolean', default: false },
    baselines: { type: 'string' },
  });
  const file = one(positionals, 'file to import');
  required(values, 'format');
  const format = oneOf(values, 'format', IMPORT_FORMATS) as ImportFormat;
  const into = required(values, 'into');
  const stepBase = wholeNumber(values, 'step-base', 0);
  const interval = wholeNumber(values, 'interval', 1);
  if (stepBase !== undefined && format !== 'csv') throw new InputError('--step-base applies to --format csv only');
  if (stepBase !== undefined && stepBase > 1) throw new InputError('--step-base must be 0 or 1', { actual: String(stepBase) });
  if (interval !== undefined && format !== 'csv' && format !== 'txt') {
    throw new InputError('--interval applies to --format csv|txt only; the other formats say their own interval');
  }
  const lrLogged = oneOf(values, 'lr-logged', ['next', 'used'] as const);
  if (lrLogged !== undefined && format !== 'hf-trainer-state') throw new InputError('--lr-logged applies to --format hf-trainer-state only');
  const suiteDir = resolveSuiteDir(into, str(values, 'baselines'));
  const result = importReference({
    file,
    format,
    suiteDir,
    name: str(values, 'name'),
    metric: str(values, 'metric'),
    lrLogged,
    stepBase,
    interval,
    force: values.force === true,
  });
  warn(result.warnings);
  const r = result.reference;
  const steps = r.curve.steps;
  process.stdout.write(
    `imported ${r.metric} → ${r.ours}: ${steps.length} points, steps ${steps[0]}..${steps[steps.length - 1]}, interval ${r.interval}, into ${result.file}\n`,
  );
  return EXIT_PASS;
}

function runExport(args: string[]): number {
  const { values, positionals } = parse(args, {
    format: { type: 'string' },
    form: { type: 'string' },
    source: { type: 'string' },
    metric: { type: 'string', multiple: true },
    interval: { type: 'string' },
    decimals: { type: 'string' },
    out: { type: 'string' },
    baselines: { type: 'string' },
  });
  const suite = one(positionals, 'suite');
  required(values, 'format');
  oneOf(values, 'format', ['megatron-golden'] as const);
  const out = required(values, 'out');
  const form = oneOf(values, 'form', ['dict', 'list'] as const) ?? 'dict';
  const decimalsText = str(values, 'decimals');
  const decimals = decimalsText === 'full' ? null : (wholeNumber(values, 'decimals', 0) ?? 5);
  if (decimals !== null && decimals > 20) throw new InputError('--decimals must be at most 20, or "full"', { actual: String(decimals) });
  const metricFlags = values.metric as string[] | undefined;
  const metrics = metricFlags?.flatMap((m) => m.split(',')).map((m) => m.trim()).filter((m) => m !== '');
  const suiteDir = resolveSuiteDir(suite, str(values, 'baselines'));
  const golden = exportMegatronGolden({
    suiteDir,
    source: str(values, 'source'),
    form,
    metrics: metrics && metrics.length > 0 ? metrics : undefined,
    interval: wholeNumber(values, 'interval', 1),
    decimals,
  });
  // json.dumps(indent=4), as Megatron writes its golden files.
  writeFileAtomic(out, `${JSON.stringify(golden, null, 4)}\n`);
  process.stdout.write(`wrote ${out}: ${Object.keys(golden).join(', ')} (${form} form)\n`);
  return EXIT_PASS;
}

async function runCalibrate(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    steps: { type: 'string' },
    runs: { type: 'string' },
    json: { type: 'string' },
    write: { type: 'boolean', default: false },
    backend: { type: 'string' },
    baselines: { type: 'string' },
  });
  const suiteDir = resolveSuiteDir(one(positionals, 'suite'), str(values, 'baselines'));
  const steps = wholeNumber(values, 'steps', 1);
  const runs = wholeNumber(values, 'runs', 1);
  const backend = await selectBackend(str(values, 'backend'));
  // Progress goes to stderr: stdout is the table, for pasting.
  let progress = progressReporter(process.stderr, 250);
  const result = await calibrate({
    suiteDir,
    steps,
    runs,
    backend: backend.goldenKey,
    onRunStart: (p) => {
      progress = progressReporter(process.stderr, 250);
      process.stderr.write(`run ${p.run}: ${p.seed === null ? 'unperturbed' : `seed ${p.seed}, ${p.flipped} of ${p.eligible} weights one ulp off`}\n`);
    },
    onStep: (_, record, total) => progress(record, total),
  });
  process.stdout.write(`${formatCalibration(result)}\n`);
  const json = str(values, 'json');
  if (json !== undefined) writeFileAtomic(json, `${JSON.stringify(calibrationJson(result), null, 2)}\n`);
  if (values.write === true) {
    const entry = writeCalibration(result);
    process.stdout.write(`wrote the per-step noise of ${Object.keys(entry.maxSpread as object).join(', ')} to ${entry.file} in ${result.suite}: the curve gate follows it where the suite has no float64 reference curve\n`);
  }
  return EXIT_PASS;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'bless':
      return runBless(rest);
    case 'import':
      return runImport(rest);
    case 'export':
      return runExport(rest);
    case 'calibrate':
      return runCalibrate(rest);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return EXIT_PASS;
    default:
      throw new InputError(command === undefined ? `a command is required\n\n${USAGE}` : `unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}

// calibrate awaits the backend; the other commands are synchronous but share this one exit path.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = exitCodeOf(error);
    process.stderr.write(code === 2 ? `error: ${(error as Error).message}\n` : `internal error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = code;
  },
);
