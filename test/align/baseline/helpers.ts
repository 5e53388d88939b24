/**
 * Shared by the baseline tests: temp copies of shipped suites (never written in place), fake run
 * folders, and the real CLI as a child process.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SHIPPED = join(REPO, 'baselines');
export const CLI = join(REPO, 'src/cli/baseline.ts');
export const TSX = join(REPO, 'node_modules/.bin/tsx');

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp folder, removed when the test process exits. */
export function tempDir(prefix = 'parity-baseline-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Copies the named files of a shipped suite into `<root>/baselines/<suite>/` and returns that folder. */
export function copySuite(root: string, suite: string, files: readonly string[]): string {
  const dir = join(root, 'baselines', suite);
  mkdirSync(dir, { recursive: true });
  for (const f of files) copyFileSync(join(SHIPPED, suite, f), join(dir, f));
  return dir;
}

export function readJson<T = unknown>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

export function shippedJson<T = unknown>(suite: string, file: string): T {
  return readJson<T>(join(SHIPPED, suite, file));
}

export interface FakeRun {
  suite: string;
  backend: string;
  pass: boolean;
  curve: Record<string, unknown>;
  /** environment.goldenKey of a GPU run (backend plus device class). */
  goldenKey?: string;
}

/** A run folder as an align run writes it: verdict.json (only the keys bless reads, plus schema) and curve.json. */
export function writeRun(dir: string, run: FakeRun, curveText?: string): string {
  mkdirSync(dir, { recursive: true });
  const environment = run.goldenKey ? { environment: { goldenKey: run.goldenKey } } : {};
  writeFileSync(join(dir, 'verdict.json'), JSON.stringify({ schema: 1, suite: run.suite, backend: run.backend, pass: run.pass, ...environment }));
  writeFileSync(join(dir, 'curve.json'), curveText ?? JSON.stringify(run.curve));
  return dir;
}

export interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/** The real CLI, as `npm run baseline -- …` runs it, in `cwd`. */
export async function cli(args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa(TSX, [CLI, ...args], { cwd, reject: false, env: { ...process.env, ...env } });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}
