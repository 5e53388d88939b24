/**
 * Shared entry wrapper: every command exits 0 (pass), 1 (misaligned / incomplete) or 2 (unusable
 * input), printing typed errors as one line that names the file and tensor.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
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

/** node:util parseArgs, with its errors turned into usage errors: exit 2 like any other unusable input. */
export function parseCli<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new InputError(`${message}\n${usage}`, { cause: error });
  }
}
