/**
 * A GPU backend can only read tensors asynchronously (webgpu has no synchronous read in Node), so
 * no code that runs on a backend may call dataSync/arraySync/bufferSync: one such call would make
 * that path fail on the GPU while passing every CPU test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../support/suite-copy.ts';

function sources(dir: string): string[] {
  return readdirSync(join(REPO, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

describe('device reads', () => {
  it('src/ and bench/ read tensors only with await data()', () => {
    const offenders: string[] = [];
    for (const file of [...sources('src'), ...sources('bench')]) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/\.(dataSync|arraySync|bufferSync)\s*\(/.test(line)) offenders.push(`${file.slice(REPO.length)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
