/**
 * `history.jsonl`: one JSON line per change of a suite's baselines (bless, import, calibrate),
 * appended and fsynced after the change itself is durable. Nothing rewrites or trims it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../errors.ts';
import { appendLineDurable } from './atomic.ts';

export const HISTORY_FILE = 'history.jsonl';

export interface HistoryEntry {
  when: string;
  /** tolerance: a manifest's tolerance policy changed by hand, with the reason. */
  action: 'bless' | 'import' | 'calibrate' | 'tolerance';
  [key: string]: unknown;
}

/**
 * ISO time of a change. SOURCE_DATE_EPOCH (seconds, the reproducible-builds convention) pins it,
 * so two runs of the same command write the same bytes; tests rely on that.
 */
export function timestamp(): string {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && /^\d+$/.test(epoch)) return new Date(Number(epoch) * 1000).toISOString();
  return new Date().toISOString();
}

export function appendHistory(suiteDir: string, entry: HistoryEntry): void {
  appendLineDurable(join(suiteDir, HISTORY_FILE), JSON.stringify(entry));
}

export function readHistory(suiteDir: string): HistoryEntry[] {
  const file = join(suiteDir, HISTORY_FILE);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as HistoryEntry;
      } catch (cause) {
        throw new InputError(`line ${i + 1} is not JSON`, { file, cause });
      }
    });
}
