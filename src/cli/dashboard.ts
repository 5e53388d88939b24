/**
 * `npm run dashboard -- <dir-with-run-folders> [--reports DIR] [--date YYYY-MM-DD]`: merges run
 * folders (the artifacts of CI's per-suite nightly jobs) into reports/nightly/<date>/, appends a
 * history line per run and renders reports/index.html. The matrix can grow without touching this.
 * Exit: 0 merged (whatever the suites' verdicts: their own jobs carry those), 2 unusable input.
 */
import { parseCli } from './run-cli.ts';
import { EXIT_PASS, EXIT_UNUSABLE, InputError, exitCodeOf } from '../errors.ts';
import { mergeRunFolders } from '../align/report/dashboard.ts';
import { DATE_PATTERN, statusOf } from '../align/report/history.ts';

const USAGE = 'usage: npm run dashboard -- <dir-with-run-folders> [--reports DIR] [--date YYYY-MM-DD]';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli({ args: argv, options: { reports: { type: 'string', default: 'reports' }, date: { type: 'string' } }, allowPositionals: true, strict: true }, USAGE);
  if (positionals.length !== 1) throw new InputError(`expected one folder of run folders\n${USAGE}`, { expected: '1 folder', actual: String(positionals.length) });
  if (values.date !== undefined && !DATE_PATTERN.test(values.date)) throw new InputError('--date must be YYYY-MM-DD', { actual: values.date });
  const { entries, unusable } = await mergeRunFolders(positionals[0], values.reports, { date: values.date });
  for (const e of entries) console.log(`${statusOf(e).toUpperCase().padEnd(5)} ${e.date} ${e.suite} (${e.backend})  ${e.runDir}`);
  console.log(`dashboard: ${values.reports}/index.html`);
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
