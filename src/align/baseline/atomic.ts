/**
 * Durable file writes for baselines. A golden is replaced by writing a temp file in the same
 * folder, fsyncing it, renaming it over the old one (atomic on POSIX within one file system) and
 * fsyncing the folder so the rename itself survives a crash: a reader sees the old file or the
 * new one, never a prefix. Temp files are named `.<name>.<pid>-<random>.tmp`, so nothing that
 * looks for `golden.<backend>.json` can mistake a leftover one for a golden.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Test hook, not a feature: with PARITY_BLESS_DELAY_MS=N the writers announce each phase on
 * stderr as `[parity-hook] <phase>` and then sleep N ms, so the kill test can SIGKILL the process
 * at a known point in the middle of a write. Unset (the normal case) it costs nothing.
 */
export const DELAY_ENV = 'PARITY_BLESS_DELAY_MS';
const CHUNKS_WHEN_DELAYED = 4;

function delayMs(): number {
  const ms = Number(process.env[DELAY_ENV] ?? 0);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

export function testPause(phase: string): void {
  const ms = delayMs();
  if (ms === 0) return;
  writeSync(2, `[parity-hook] ${phase}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** fsync of a directory makes a rename or a new entry durable; Windows cannot open folders, so skip there. */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM') throw error;
  } finally {
    closeSync(fd);
  }
}

export function tempPathFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

export function writeFileAtomic(file: string, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  const tmp = tempPathFor(file);
  const fd = openSync(tmp, 'wx', 0o644);
  let renamed = false;
  try {
    try {
      testPause('temp-open');
      const chunks = delayMs() > 0 ? CHUNKS_WHEN_DELAYED : 1;
      const size = Math.ceil(bytes.length / chunks);
      for (let i = 0; i < chunks; i++) {
        writeAll(fd, bytes.subarray(i * size, Math.min(bytes.length, (i + 1) * size)));
        testPause(`temp-chunk-${i + 1}-of-${chunks}`);
      }
      fsyncSync(fd);
      testPause('temp-synced');
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    renamed = true;
    testPause('renamed');
    fsyncDir(dirname(file));
    testPause('dir-synced');
  } finally {
    // A failed write must not leave its temp file behind (a killed one cannot help it).
    if (!renamed) rmSync(tmp, { force: true });
  }
}

/**
 * Appends one line with a single write() and fsyncs it. A process killed mid-call leaves either
 * no line or the whole line: the kernel does not split a small write to a regular file when the
 * writer dies.
 */
export function appendLineDurable(file: string, line: string): void {
  if (line.includes('\n')) throw new Error('appendLineDurable: the line must not contain a newline');
  const isNew = !existsSync(file);
  const fd = openSync(file, 'a', 0o644);
  try {
    writeAll(fd, Buffer.from(`${line}\n`, 'utf8'));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (isNew) fsyncDir(dirname(file));
  testPause('history-appended');
}
