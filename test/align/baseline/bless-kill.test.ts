/**
 * A bless killed at any moment leaves the previous golden intact: the golden file always parses
 * and is byte-for-byte either the old golden or the new one, never a prefix, and a leftover temp
 * file is never mistaken for a golden.
 *
 * The CLI runs as ONE node process (`node --import <tsx loader>`), not through the tsx binary,
 * which forks a child: SIGKILL to the wrapper would leave the writer running. The test hook
 * PARITY_BLESS_DELAY_MS (src/align/baseline/atomic.ts) makes the writer announce each phase on
 * stderr and sleep, so kills land at every phase of the write; random-time kills cover the rest.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { checkGolden } from '../../../src/align/baseline/golden.ts';
import { CLI, copySuite, REPO, shippedJson, tempDir, writeRun } from './helpers.ts';

const LOADER = pathToFileURL(join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;
const DELAY_MS = 100;
/** In write order; the rename is what makes the new golden visible. */
const PHASES = [
  'temp-open',
  'temp-chunk-1-of-4',
  'temp-chunk-2-of-4',
  'temp-chunk-3-of-4',
  'temp-chunk-4-of-4',
  'temp-synced',
  'renamed',
  'dir-synced',
  'history-appended',
] as const;
const FIRST_VISIBLE = PHASES.indexOf('renamed');
const TIMED_KILLS = 12;

interface CurveJson {
  steps: number[];
  [k: string]: number[];
}

const ENV = { ...process.env, SOURCE_DATE_EPOCH: '1767225600', PARITY_BLESS_DELAY_MS: String(DELAY_MS) };
const ARGS = ['bless', 'gpt2', '--from', 'reports/gpt2/run', '--reason', 'kill test'];

function spawnBless(cwd: string) {
  return execa(process.execPath, ['--import', LOADER, CLI, ...ARGS], { cwd, env: ENV, reject: false, buffer: true });
}

/** A golden written by hand (not by the code under test): the first 500 steps of the curve, shifted. */
function oldGoldenText(curve: CurveJson): string {
  const head = (v: number[]) => v.slice(0, 500);
  const c: CurveJson = { steps: head(curve.steps) };
  for (const [k, v] of Object.entries(curve)) if (k !== 'steps') c[k] = head(v).map((x) => x + 1);
  return JSON.stringify({ schema: 1, suite: 'gpt2', backend: 'wasm', createdAt: '2025-01-01T00:00:00.000Z', fromRun: 'old', reason: 'old', steps: 500, curve: c }, null, 2);
}

function setup(curve: CurveJson, oldText: string): { root: string; suiteDir: string } {
  const root = tempDir('parity-bless-kill-');
  const suiteDir = copySuite(root, 'gpt2', ['config.json', 'manifest.json']);
  writeRun(join(root, 'reports/gpt2/run'), { suite: 'gpt2', backend: 'wasm', pass: true, curve });
  writeFileSync(join(suiteDir, 'golden.wasm.json'), oldText);
  return { root, suiteDir };
}

describe('bless killed mid-write', () => {
  it('leaves the old golden or the whole new one, never a partial file', { timeout: 300_000 }, async () => {
    const curve = shippedJson<CurveJson>('gpt2', 'train_curve.json');
    const oldText = oldGoldenText(curve);

    // The new golden's exact bytes, from one uninterrupted run (same cwd layout, pinned clock).
    const ref = setup(curve, oldText);
    const t0 = Date.now();
    const full = await spawnBless(ref.root);
    const fullMs = Date.now() - t0;
    expect(full.exitCode, String(full.stderr)).toBe(0);
    const newText = readFileSync(join(ref.suiteDir, 'golden.wasm.json'), 'utf8');
    expect(newText).not.toBe(oldText);
    // The new golden holds the run's curve (oracle: the file we gave it).
    const newGolden = JSON.parse(newText) as { curve: CurveJson };
    expect(newGolden.curve).toEqual(curve);
    for (const phase of PHASES) expect(String(full.stderr)).toContain(`[parity-hook] ${phase}`);

    const { root, suiteDir } = setup(curve, oldText);
    const goldenFile = join(suiteDir, 'golden.wasm.json');
    const plan: Array<{ phase?: (typeof PHASES)[number]; afterMs?: number }> = [
      ...PHASES.flatMap((phase) => [{ phase }, { phase }]),
      // Spread over the whole run, startup included (deterministic spread, no RNG).
      ...Array.from({ length: TIMED_KILLS }, (_, i) => ({ afterMs: Math.round(((i + 0.5) / TIMED_KILLS) * fullMs * 0.95) })),
    ];
    let killed = 0;
    const seen = { old: 0, new: 0 };
    for (const step of plan) {
      writeFileSync(goldenFile, oldText);
      rmSync(join(suiteDir, 'history.jsonl'), { force: true });

      const child = spawnBless(root);
      let err = '';
      let timer: NodeJS.Timeout | undefined;
      if (step.phase !== undefined) {
        const marker = `[parity-hook] ${step.phase}\n`;
        child.stderr?.on('data', (chunk: Buffer) => {
          err += chunk.toString();
          if (err.includes(marker)) child.kill('SIGKILL');
        });
      } else {
        timer = setTimeout(() => child.kill('SIGKILL'), step.afterMs);
      }
      const result = await child;
      clearTimeout(timer);
      if (result.signal === 'SIGKILL') killed++;
      if (step.phase !== undefined) expect(result.signal, `kill at ${step.phase}`).toBe('SIGKILL');

      const text = readFileSync(goldenFile, 'utf8');
      const isOld = text === oldText;
      const isNew = text === newText;
      expect(isOld || isNew, `after a kill at ${step.phase ?? `${step.afterMs} ms`} the golden is neither old nor new (${text.length} bytes)`).toBe(true);
      if (isOld) seen.old++;
      else seen.new++;
      // What the writer had finished when it died, from its own announcements (robust to a slow
      // test process: a kill that lands a phase later than aimed is judged by where it landed).
      const reached = [...String(result.stderr).matchAll(/\[parity-hook\] (\S+)/g)].map((m) => m[1]);
      const last = reached.length === 0 ? -1 : PHASES.indexOf(reached[reached.length - 1] as (typeof PHASES)[number]);
      if (step.phase !== undefined) expect(last, `kill aimed at ${step.phase}`).toBeGreaterThanOrEqual(PHASES.indexOf(step.phase));
      expect(isNew, `killed after ${reached[reached.length - 1] ?? 'startup'}`).toBe(last >= FIRST_VISIBLE);
      JSON.parse(text);

      // History is appended after the golden: a line exists only for a visible new golden, and is whole.
      const history = readdirSync(suiteDir).includes('history.jsonl') ? readFileSync(join(suiteDir, 'history.jsonl'), 'utf8') : '';
      if (history !== '') {
        expect(isNew).toBe(true);
        expect(history.endsWith('\n')).toBe(true);
        for (const line of history.trim().split('\n')) JSON.parse(line);
      }

      // Leftover temp files do not look like goldens, and the golden check reads the real file.
      const goldens = readdirSync(suiteDir).filter((f) => /^golden\..+\.json$/.test(f));
      expect(goldens).toEqual(['golden.wasm.json']);
      const verdict = checkGolden(suiteDir, 'wasm', { steps: curve.steps, metrics: Object.fromEntries(Object.entries(curve).filter(([k]) => k !== 'steps')) });
      expect(verdict.pass).toBe(isNew);
    }
    // The kills really landed mid-run, on both sides of the rename.
    expect(killed).toBeGreaterThanOrEqual(PHASES.length * 2 + TIMED_KILLS / 2);
    expect(seen.old).toBeGreaterThan(0);
    expect(seen.new).toBeGreaterThan(0);
    // Killed writers leave temp files behind; all are dot-files ending in .tmp.
    for (const f of readdirSync(suiteDir).filter((f) => f.startsWith('.'))) expect(f).toMatch(/^\.golden\.wasm\.json\.\d+-[0-9a-f]+\.tmp$/);
  });
});
