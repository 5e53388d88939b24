/** Temporary copies of shipped suites for tests that edit or break them. */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASELINES } from './backend.ts';

export function tempDir(prefix = 'parity-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Copies the named files of a shipped suite into a fresh folder. */
export function copySuite(suite: string, files: readonly string[]): { dir: string; cleanup: () => void } {
  const t = tempDir(`parity-${suite}-`);
  for (const f of files) cpSync(join(BASELINES, suite, f), join(t.dir, f));
  return t;
}

export const TSX = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
export const REPO = new URL('../../', import.meta.url).pathname;
