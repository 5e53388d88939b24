/** `<suite>` on the command line: a name under the baselines folder, or a path to a suite folder. */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../../errors.ts';

export const DEFAULT_BASELINES_DIR = 'baselines';

export function resolveSuiteDir(suite: string, baselinesDir: string = DEFAULT_BASELINES_DIR): string {
  const looksLikePath = suite.includes('/') || suite.includes('\\') || suite.startsWith('.');
  const candidates = looksLikePath ? [resolve(suite)] : [resolve(baselinesDir, suite), resolve(suite)];
  for (const dir of candidates) {
    if (existsSync(dir) && statSync(dir).isDirectory()) return dir;
  }
  throw new InputError('no such suite folder', {
    file: looksLikePath ? suite : join(baselinesDir, suite),
    expected: 'a suite name under the baselines folder (see --baselines) or a path to a suite folder',
  });
}
