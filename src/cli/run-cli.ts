/**
 * Shared entry wrapper: every command exits 0 (pass), 1 (misaligned / incomplete) or 2 (unusable
 * input), printing typed errors as one line that names the file and tensor.
 */
import { InputError, exitCodeOf } from '../errors.ts';

export function runCli(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof InputError) {
        process.stderr.write(`error: ${error.message}\n`);
      } else {
        process.stderr.write(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      }
      process.exitCode = exitCodeOf(error);
    },
  );
}

/** node:util parseArgs errors are usage errors: exit 2 like any other unusable input. */
export function usageError(error: unknown, usage: string): InputError {
  const message = error instanceof Error ? error.message : String(error);
  return new InputError(`${message}\n${usage}`);
}
