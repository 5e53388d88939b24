import { isAbsolute, relative, resolve } from 'node:path';

/**
 * A path as recorded in a baseline (fromRun, source.file): relative to the working directory when
 * inside it (run folders live under reports/ in the repo), so the record does not carry one
 * machine's home folder; absolute otherwise.
 */
export function displayPath(path: string): string {
  const abs = resolve(path);
  const rel = relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}
