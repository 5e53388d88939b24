/**
 * `npm run dashboard -- <dir-with-run-folders> [--reports DIR] [--date YYYY-MM-DD]
 *   [--expect-suites a,b --expect-backends x,y [--steps N]] [--keep-nights N] [--bench DIR]`:
 * merges run folders (the artifacts of CI's nightly legs) into reports/nightly/<date>/, upserts a
 * history line per run and renders reports/index.html. With an expected matrix, every suite ×
 * backend that left no run folder gets an error line (a leg that died before writing anything
 * must not vanish from the dashboard). The matrix can grow without touching this. --bench: the
 * night's `npm run bench` JSON files (any depth under DIR) go into reports/bench-history.jsonl,
 * which the dashboard plots.
 * Exit: 0 merged (whatever the suites' verdicts: their own jobs carry those; a missing leg's job
 * is red too), 2 unusable input.
 */
import { parseCli } from './run-cli.ts';
import { EXIT_PASS, EXIT_UNUSABLE, InputError, exitCodeOf } from '../errors.ts';
import { type ExpectedLegs, mergeRunFolders } from '../align/report/merge.ts';
import { DATE_PATTERN, statusOf } from '../align/report/history.ts';
import { BENCH_HISTORY_FILE, benchEntries, upsertBenchHistory } from '../align/report/bench-history.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new InputError('not a JSON file', { file, cause });
  }
}

const USAGE =
  'usage: npm run dashboard -- <dir-with-run-folders> [--reports DIR] [--date YYYY-MM-DD] [--expect-suites a,b --expect-backends x,y [--steps N]] [--keep-nights N] [--bench DIR]';

/** A comma-separated list (a JSON list is accepted too, as CI emits its matrix as JSON). */
function list(flag: string, raw: string): string[] {
  let items: unknown;
  try {
    items = raw.trim().startsWith('[') ? JSON.parse(raw) : raw.split(',');
  } catch (cause) {
    throw new InputError(`${flag} is neither a,b nor a JSON list`, { actual: raw, cause });
  }
  if (!Array.isArray(items) || !items.every((x) => typeof x === 'string')) throw new InputError(`${flag} must list names`, { actual: raw });
  const names = items.map((s: string) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new InputError(`${flag} names nothing`, { expected: 'a,b', actual: raw });
  return names;
}

function positiveInteger(flag: string, raw: string | undefined): number | undefined {
  // Empty: a CI variable left unset, the same as an absent flag.
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) throw new InputError(`${flag} must be a positive integer`, { expected: 'an integer ≥ 1', actual: raw });
  return Number(raw);
}

/** The CI run whose logs explain a missing leg, from GitHub's environment when it is set. */
function runUrl(env: NodeJS.ProcessEnv): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  return server && repo && run ? `${server}/${repo}/actions/runs/${run}` : undefined;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(
    {
      args: argv,
      options: {
        reports: { type: 'string', default: 'reports' },
        date: { type: 'string' },
        'expect-suites': { type: 'string' },
        'expect-backends': { type: 'string' },
        steps: { type: 'string' },
        'keep-nights': { type: 'string' },
        bench: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    },
    USAGE,
  );
  if (positionals.length !== 1) throw new InputError(`expected one folder of run folders\n${USAGE}`, { expected: '1 folder', actual: String(positionals.length) });
  const date = values.date || undefined;
  if (date !== undefined && !DATE_PATTERN.test(date)) throw new InputError('--date must be YYYY-MM-DD', { actual: date });
  const suites = values['expect-suites'];
  const backends = values['expect-backends'];
  if ((suites === undefined) !== (backends === undefined)) throw new InputError(`--expect-suites and --expect-backends go together\n${USAGE}`);
  const steps = positiveInteger('--steps', values.steps);
  if (steps !== undefined && suites === undefined) throw new InputError('--steps says what the expected legs were asked for; it needs --expect-suites and --expect-backends');
  let expect: ExpectedLegs | undefined;
  if (suites !== undefined && backends !== undefined) {
    if (date === undefined) throw new InputError('--expect-suites needs --date: the night the legs ran');
    expect = { suites: list('--expect-suites', suites), backends: list('--expect-backends', backends), steps: steps ?? null };
  }
  const keepNights = positiveInteger('--keep-nights', values['keep-nights']);

  if (values.bench) {
    if (date === undefined) throw new InputError('--bench needs --date: the night the benchmarks ran');
    const files = readdirSync(values.bench, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json')).map((f) => join(values.bench!, f));
    const lines = files.flatMap((f) => benchEntries(readJson(f), date, f));
    await upsertBenchHistory(join(values.reports, BENCH_HISTORY_FILE), lines);
    console.log(`bench: ${lines.length} workload(s) from ${files.length} file(s) into ${values.reports}/${BENCH_HISTORY_FILE}`);
  }

  const { entries, unusable, missing } = await mergeRunFolders(positionals[0], values.reports, { date, expect, keepNights, runUrl: runUrl(process.env) });
  for (const e of entries) console.log(`${statusOf(e).toUpperCase().padEnd(5)} ${e.date} ${e.suite} (${e.backend}${e.steps === null ? '' : `, ${e.steps} steps`})  ${e.runDir}`);
  console.log(`dashboard: ${values.reports}/index.html`);
  for (const leg of missing) console.error(`missing leg (no run folder arrived): ${leg}`);
  for (const folder of unusable) console.error(`unusable run folder: ${folder}`);
  return unusable.length > 0 ? EXIT_UNUSABLE : EXIT_PASS;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof InputError ? `parity dashboard: ${error.message}` : error);
    process.exitCode = exitCodeOf(error);
  },
);
