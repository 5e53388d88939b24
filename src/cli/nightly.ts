/**
 * `npm run nightly -- [--suites a,b] [--steps N] [--backend NAME]`: aligns every baseline suite,
 * writes reports/nightly/<date>/<suite>/<backend|auto>/, appends reports/history.jsonl and renders
 * reports/index.html.
 * Exit: 0 all aligned, 1 a suite misaligned, 2 unusable input, 70 an internal fault.
 */
import { InputError, exitCodeOf } from '../errors.ts';
import { parseNightlyArgs, runNightly, summaryLines } from '../align/nightly.ts';
import { runSuite } from '../align/run-suite.ts';

async function main(argv: string[]): Promise<number> {
  const args = parseNightlyArgs(argv);
  const result = await runNightly({ ...args, runSuite, log: (line) => console.log(line) });
  for (const line of summaryLines(result)) console.log(line);
  return result.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof InputError ? `parity nightly: ${error.message}` : error);
    process.exitCode = exitCodeOf(error);
  },
);
