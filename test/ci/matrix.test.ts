/**
 * Nights of the nightly workflow as GitHub runs them, simulated on this machine with the
 * workflows' own `run:` scripts, environments and artifact settings (names, paths, patterns,
 * overwrite), each job in a folder of its own, and a bare git repository standing in for GitHub's
 * gh-pages branch:
 *
 *   1. setup, the CPU legs (gpt2 misaligned, t5v11 unusable) and one early GPU leg, the first
 *      dashboard; the other GPU legs (t5 × webgpu dies before writing anything), the second;
 *   2. "Re-run failed jobs": the failed legs again (gpt2 now aligns and uploads a second time,
 *      t5 × webgpu dies again), then both dashboard passes again;
 *   3. a run by hand with steps=2 the same day, with a real gpt2 leg through ci/nightly.sh;
 *   4. the next night, with the published window set to one night.
 *
 * Legs other than the real one run the nightly's TypeScript core (runNightly) with a synthetic
 * runner, on the exact arguments their step's script passed to ci/nightly.sh. Everything from
 * the legs' uploads on is real: npm run dashboard, ci/restore-history.sh, ci/publish-pages.sh.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curveToJson } from '../../src/align/curve.ts';
import { type SuiteRunner, parseNightlyArgs, runNightly } from '../../src/align/nightly.ts';
import { type HistoryEntry, historyKey, readHistory } from '../../src/align/report/history.ts';
import { writeRunReports } from '../../src/align/report/write.ts';
import { InputError } from '../../src/errors.ts';
import { syntheticRun } from '../align/report/synthetic.ts';
import { type Context, type Job, type Step, expand, expandAll, globMatches, loadWorkflow, stepNamed, stepUsing } from './workflow.ts';

const ROOT = resolve('.');
const NIGHT = '2026-02-10';
const NEXT_NIGHT = '2026-02-11';

type Behaviour = 'aligned' | 'misaligned' | 'unusable' | 'dead' | 'real';

const nightly = loadWorkflow('nightly.yml');
const called = loadWorkflow('nightly-dashboard.yml');

let root: string;
let origin: string;

/** The process environment without anything of a real CI run around this test. */
function baseEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !/^(GITHUB_|RUNNER_|PARITY_)/.test(k))) as Record<string, string>;
}

/**
 * A job's workspace: the checkout (the repository's files, linked), optionally a clone whose
 * origin is the stand-in for GitHub, optionally ci/nightly.sh replaced by a stub that records the
 * arguments the step's script gives it.
 */
function workspace(options: { git?: boolean; stubNightly?: boolean } = {}): string {
  const dir = mkdtempSync(join(root, 'job-'));
  for (const name of ['src', 'baselines', 'node_modules', 'package.json', 'tsconfig.json']) symlinkSync(join(ROOT, name), join(dir, name));
  if (options.stubNightly) {
    mkdirSync(join(dir, 'ci'));
    for (const name of readdirSync(join(ROOT, 'ci'))) if (name !== 'nightly.sh') symlinkSync(join(ROOT, 'ci', name), join(dir, 'ci', name));
    writeFileSync(join(dir, 'ci', 'nightly.sh'), '#!/usr/bin/env bash\nprintf "%s\\0" "$@" > "$SIM_NIGHTLY_ARGS"\n', { mode: 0o755 });
  } else {
    symlinkSync(join(ROOT, 'ci'), join(dir, 'ci'));
  }
  if (options.git) {
    execFileSync('git', ['init', '-q', dir]);
    execFileSync('git', ['-C', dir, 'remote', 'add', 'origin', origin]);
  }
  return dir;
}

/** Runs a step's `run:` script as GitHub does (bash -e -o pipefail, in the workspace), with its env. */
function runStep(step: Step, cwd: string, env: Record<string, string>): { status: number; stdout: string; stderr: string; outputs: Record<string, string> } {
  const outputFile = join(cwd, '.github-output');
  writeFileSync(outputFile, '');
  const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run!], { cwd, encoding: 'utf8', env: { ...baseEnv(), ...env, GITHUB_OUTPUT: outputFile } });
  const outputs = Object.fromEntries(
    readFileSync(outputFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, outputs };
}

/** One workflow run's artifacts, with actions/upload-artifact's and download-artifact's rules. */
class Artifacts {
  readonly dir = mkdtempSync(join(root, 'artifacts-'));
  /** Returns whether an artifact was made (if-no-files-found: warn makes none from nothing). */
  upload(step: Step, ctx: Context, cwd: string): boolean {
    const name = String(expand(step.with!.name, ctx));
    const source = join(cwd, String(step.with!.path));
    if (!existsSync(source) || readdirSync(source).length === 0) {
      if (step.with!['if-no-files-found'] === 'error') throw new Error(`upload ${name}: no files`);
      return false;
    }
    const target = join(this.dir, name);
    if (existsSync(target)) {
      if (step.with!.overwrite !== true) throw new Error(`upload ${name}: an artifact with this name already exists in this run (409 Conflict)`);
      rmSync(target, { recursive: true });
    }
    // The root of a single uploaded folder is that folder.
    cpSync(source, target, { recursive: true });
    return true;
  }
  /** By pattern: each artifact into <path>/<name>/; by name: its files into <path>/. */
  download(step: Step, ctx: Context, cwd: string): string[] {
    const path = join(cwd, String(step.with!.path));
    const pattern = step.with!.pattern;
    if (pattern !== undefined) {
      const names = readdirSync(this.dir).filter((n) => globMatches(String(pattern), n));
      for (const n of names) cpSync(join(this.dir, n), join(path, n), { recursive: true });
      return names;
    }
    const name = String(expand(step.with!.name, ctx));
    if (!existsSync(join(this.dir, name))) throw new Error(`download ${name}: no such artifact`);
    cpSync(join(this.dir, name), path, { recursive: true });
    return [name];
  }
  names(): string[] {
    return readdirSync(this.dir).sort();
  }
}

/** The setup job: its matrix step's own script, with the variables and inputs given. */
function setup(inputs: Record<string, string>, vars: Record<string, string>, night: string): Record<string, string> {
  const job = nightly.jobs.setup;
  const step = stepNamed(job, 'matrix');
  // The runner's clock reads `night` (ci/matrix.mjs takes PARITY_NIGHT before the clock).
  // A variable the repository does not set reads as '' on GitHub.
  const unset = { PARITY_GPU: '', PARITY_GPU_RUNNER: '', PARITY_GPU_BACKENDS: '', PARITY_PAGES_NIGHTS: '' };
  const r = runStep(step, workspace(), { ...expandAll(step.env, { inputs, vars: { ...unset, ...vars } }), PARITY_NIGHT: night });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return expandAll(job.outputs, { steps: { matrix: { outputs: r.outputs } } });
}

/** Stands in for the align runner: writes the run folder runSuite writes, from a synthetic run. */
function syntheticRunner(behaviour: Behaviour, backend: string): SuiteRunner {
  return async (options) => {
    const suite = options.suiteDir.split('/').pop()!;
    if (behaviour === 'unusable') throw new InputError('config.json is not valid JSON', { file: join(options.suiteDir, 'config.json') });
    const base = syntheticRun({ aligned: behaviour !== 'misaligned', suite });
    const run = { ...base, verdict: { ...base.verdict, backend } };
    const runDir = join(options.reportsDir, suite, options.runDirName!);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'verdict.json'), JSON.stringify(run.verdict));
    writeFileSync(join(runDir, 'curve.json'), JSON.stringify(curveToJson(run.curve!)));
    writeFileSync(join(runDir, 'reference-curve.json'), JSON.stringify(curveToJson(run.referenceCurve!)));
    await writeRunReports(runDir, run, { env: {} });
    return { verdict: run.verdict, runDir };
  };
}

type Legs = Map<string, Behaviour>;
const legKey = (suite: string, backend: string) => `${suite}/${backend}`;

/** The matrix of a leg job: every combination of its matrix lists. */
function matrixOf(job: Job, ctx: Context): Array<Record<string, string>> {
  let combos: Array<Record<string, string>> = [{}];
  for (const [key, value] of Object.entries(job.strategy!.matrix!)) {
    const list = expand(value, ctx) as string[];
    combos = combos.flatMap((c) => list.map((v) => ({ ...c, [key]: v })));
  }
  return combos;
}

/**
 * Runs the legs of `jobName` (cpu or gpu) whose suite × backend is in `which`, as their steps say:
 * the align step's script (the real ci/nightly.sh for a 'real' leg; else a stub recording its
 * arguments, which then go to runNightly), then the upload step. A dead leg stops before writing
 * anything; its upload step still runs. Returns the legs that failed (non-zero exit).
 */
async function runLegs(jobName: 'cpu' | 'gpu', outputs: Record<string, string>, which: Legs, artifacts: Artifacts): Promise<string[]> {
  const job = nightly.jobs[jobName];
  const failed: string[] = [];
  for (const matrix of matrixOf(job, { needs: { setup: { outputs } } })) {
    const ctx = { matrix, needs: { setup: { outputs } } };
    const env = expandAll(job.env, ctx);
    const key = legKey(env.SUITE, env.BACKEND);
    const behaviour = which.get(key);
    if (behaviour === undefined) continue;
    const cwd = workspace({ stubNightly: behaviour !== 'real' });
    let exitCode = 0;
    if (behaviour === 'dead') {
      exitCode = 1; // npm ci, or the runner, died: nothing written
    } else {
      const argsFile = join(cwd, 'nightly-args');
      const r = runStep(stepNamed(job, /^Align/), cwd, { ...env, SIM_NIGHTLY_ARGS: argsFile });
      exitCode = r.status;
      if (behaviour !== 'real') {
        const args = parseNightlyArgs(readFileSync(argsFile, 'utf8').split('\0').slice(0, -1));
        const result = await runNightly({ ...args, baselinesDir: join(ROOT, 'baselines'), reportsDir: join(cwd, args.reportsDir), runSuite: syntheticRunner(behaviour, env.BACKEND) });
        exitCode = result.exitCode;
      }
    }
    artifacts.upload(stepUsing(job, 'actions/upload-artifact')[0], ctx, cwd);
    if (exitCode !== 0) failed.push(key);
  }
  return failed;
}

/**
 * One dashboard pass: the calling job's inputs, then the called workflow's merge job (download,
 * restore, merge, upload) and publish job (download, publish), each in a fresh workspace.
 */
function dashboardPass(caller: 'dashboard' | 'dashboard-gpu', outputs: Record<string, string>, artifacts: Artifacts): { downloaded: string[]; merge: { status: number; stdout: string; stderr: string } } {
  const inputs = expandAll(nightly.jobs[caller].with, { needs: { setup: { outputs } } });
  const merge = called.jobs.merge;
  const ctx = { inputs, github: { run_id: '4242' } };
  const env = expandAll(merge.env, ctx);
  const mergeDir = workspace({ git: true });
  const downloaded = artifacts.download(stepUsing(merge, 'actions/download-artifact')[0], ctx, mergeDir);
  const restore = runStep(stepNamed(merge, 'Restore the published history'), mergeDir, env);
  expect(restore.status, restore.stderr).toBe(0);
  const merged = runStep(stepNamed(merge, 'merge'), mergeDir, env);
  expect(merged.status, merged.stderr).toBe(0);
  artifacts.upload(stepNamed(merge, 'upload'), ctx, mergeDir);

  const publish = called.jobs.publish;
  const publishDir = workspace({ git: true });
  artifacts.download(stepUsing(publish, 'actions/download-artifact')[0], ctx, publishDir);
  const published = runStep(stepNamed(publish, 'Publish to gh-pages'), publishDir, expandAll(stepNamed(publish, 'Publish to gh-pages').env, ctx));
  expect(published.status, published.stderr).toBe(0);
  return { downloaded, merge: merged };
}

/** The published site (gh-pages of the stand-in for GitHub), unpacked. */
function site(): string {
  const dir = mkdtempSync(join(root, 'site-'));
  execFileSync('sh', ['-c', `git --git-dir "${origin}" archive gh-pages | tar -x -C "${dir}"`]);
  return dir;
}

/** The rows of the latest-night table: "suite/backend" → status. */
function rows(dir: string): Record<string, string> {
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  const latest = /<div id="latest">.*?<\/div>/s.exec(html)![0];
  const found = [...latest.matchAll(/data-suite="([^"]+)" data-backend="([^"]+)" data-steps="full" data-status="([a-z]+)"/g)].map((m) => [legKey(m[1], m[2]), m[3]] as const);
  // One row per suite × backend, never two.
  expect(new Set(found.map(([k]) => k)).size).toBe(found.length);
  return Object.fromEntries(found);
}

function history(dir: string): HistoryEntry[] {
  const h = readHistory(join(dir, 'history.jsonl'));
  const keys = h.map(historyKey);
  expect(new Set(keys).size, 'history without duplicates').toBe(keys.length);
  return h;
}

const SUITES = ['bert', 'gpt2', 'llama', 'megatron-bert', 'megatron-gpt2', 'roberta', 't5', 't5v11', 'vit'];
const GPU_VARS = { PARITY_GPU: 'true', PARITY_GPU_BACKENDS: '["webgpu"]' };
const every = (backend: string, behaviour: Behaviour, except: Record<string, Behaviour> = {}): Legs => new Map(SUITES.map((s) => [legKey(s, backend), except[s] ?? behaviour]));

describe('a night of the nightly workflow, re-run and merged twice', () => {
  let artifacts: Artifacts;
  let outputs: Record<string, string>;
  const failed: string[] = [];

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'parity-ci-night-'));
    origin = join(root, 'origin.git');
    execFileSync('git', ['init', '-q', '--bare', origin]);
    artifacts = new Artifacts();
  });

  // Every job folder holds a plotly copy (11 MB): leave nothing behind.
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('setup reads the suites from baselines/, the GPU switch from the variable and the night from the clock', () => {
    outputs = setup({ steps: '' }, GPU_VARS, NIGHT);
    expect(JSON.parse(outputs.suites)).toEqual(SUITES);
    expect(outputs).toMatchObject({ backend: 'wasm', gpu: 'true', 'all-backends': 'wasm,webgpu', night: NIGHT, steps: '' });
  });

  it('the first dashboard shows the CPU legs (and a GPU leg already done) without waiting for the rest', async () => {
    failed.push(...(await runLegs('cpu', outputs, every('wasm', 'aligned', { gpt2: 'misaligned', t5v11: 'unusable' }), artifacts)));
    failed.push(...(await runLegs('gpu', outputs, new Map([[legKey('bert', 'webgpu'), 'aligned']]), artifacts)));
    expect(failed).toEqual(['gpt2/wasm', 't5v11/wasm']);
    const { downloaded } = dashboardPass('dashboard', outputs, artifacts);
    expect(downloaded).toEqual([...SUITES.map((s) => `leg-${s}-wasm`), 'leg-bert-webgpu'].sort());
    const published = site();
    expect(rows(published)).toEqual({
      ...Object.fromEntries(SUITES.map((suite) => [legKey(suite, 'wasm'), 'pass'])),
      'bert/webgpu': 'pass',
      'gpt2/wasm': 'fail',
      't5v11/wasm': 'error',
    });
    expect(history(published)).toHaveLength(SUITES.length + 1);
  });

  it('the second dashboard adds the GPU legs, an error row for the one that died before writing anything', async () => {
    const gpu = every('webgpu', 'aligned', { t5: 'dead' });
    gpu.delete(legKey('bert', 'webgpu')); // done before the first dashboard
    failed.push(...(await runLegs('gpu', outputs, gpu, artifacts)));
    expect(artifacts.names()).not.toContain('leg-t5-webgpu');
    const { downloaded, merge } = dashboardPass('dashboard-gpu', outputs, artifacts);
    // The first pass's site artifact is in this run's artifacts; the merge must not take it in.
    expect(artifacts.names()).toContain('nightly-site-cpu');
    expect(downloaded.every((n) => n.startsWith('leg-'))).toBe(true);
    expect(merge.stderr).toContain('missing leg (no run folder arrived): t5/webgpu');
    const published = site();
    expect(Object.keys(rows(published))).toHaveLength(2 * SUITES.length);
    expect(rows(published)['t5/webgpu']).toBe('error');
    const dead = history(published).find((e) => e.suite === 't5' && e.backend === 'webgpu')!;
    expect(dead.error).toMatch(/^no result from this leg/);
    expect(JSON.parse(readFileSync(join(published, 'nightly', NIGHT, 't5', 'webgpu', 'error.json'), 'utf8'))).toMatchObject({ suite: 't5', backend: 'webgpu' });
    expect(history(published)).toHaveLength(2 * SUITES.length);
  });

  it('re-running the failed jobs uploads again over the same artifacts and leaves one row and one line per suite × backend', async () => {
    // "Re-run failed jobs": the failed legs, then the dashboard jobs after them.
    expect(failed).toEqual(['gpt2/wasm', 't5v11/wasm', 't5/webgpu']);
    await runLegs('cpu', outputs, new Map<string, Behaviour>([[legKey('gpt2', 'wasm'), 'aligned'], [legKey('t5v11', 'wasm'), 'unusable']]), artifacts);
    await runLegs('gpu', outputs, new Map<string, Behaviour>([[legKey('t5', 'webgpu'), 'dead']]), artifacts);
    dashboardPass('dashboard', outputs, artifacts);
    dashboardPass('dashboard-gpu', outputs, artifacts);
    const published = site();
    const expected = Object.fromEntries(SUITES.flatMap((s) => ['wasm', 'webgpu'].map((b) => [legKey(s, b), 'pass'])));
    expect(rows(published)).toEqual({ ...expected, 't5v11/wasm': 'error', 't5/webgpu': 'error' });
    const lines = history(published);
    expect(lines).toHaveLength(2 * SUITES.length);
    expect(lines.every((e) => e.date === NIGHT && e.steps === null)).toBe(true);
    expect(lines.find((e) => e.suite === 'gpt2' && e.backend === 'wasm')).toMatchObject({ pass: true, runDir: `nightly/${NIGHT}/gpt2/wasm` });
    // The published branch is one commit holding the night's run folders, two per suite.
    expect(readdirSync(join(published, 'nightly', NIGHT)).sort()).toEqual(SUITES);
    expect(execFileSync('git', ['--git-dir', origin, 'rev-list', '--count', 'gh-pages'], { encoding: 'utf8' }).trim()).toBe('1');
  });

  it('a run by hand with steps=2 the same day is filed apart and leaves the night’s rows alone', async () => {
    const before = rows(site());
    const manual = new Artifacts();
    const out = setup({ steps: '2' }, {}, NIGHT);
    expect(out).toMatchObject({ gpu: 'false', steps: '2' });
    // gpt2 × wasm through the real ci/nightly.sh and the real align, two steps.
    expect(await runLegs('cpu', out, every('wasm', 'aligned', { gpt2: 'real' }), manual)).toEqual([]);
    dashboardPass('dashboard', out, manual);
    const published = site();
    expect(rows(published)).toEqual(before);
    const short = /<div id="short-runs">.*?<\/div>/s.exec(readFileSync(join(published, 'index.html'), 'utf8'))![0];
    expect([...short.matchAll(/data-suite="([^"]+)" data-backend="wasm" data-steps="2"/g)].map((m) => m[1]).sort()).toEqual(SUITES);
    const real = JSON.parse(readFileSync(join(published, 'nightly', NIGHT, 'gpt2', 'wasm-2steps', 'verdict.json'), 'utf8'));
    expect(real).toMatchObject({ suite: 'gpt2', backend: 'wasm', pass: true });
    expect(real.train.steps).toBe(2);
    const lines = history(published);
    expect(lines).toHaveLength(3 * SUITES.length);
    expect(lines.filter((e) => e.steps === 2).map((e) => e.runDir).sort()).toEqual(SUITES.map((s) => `nightly/${NIGHT}/${s}/wasm-2steps`));
  }, 180_000);

  it('the next night, the published site keeps the window of nights the variable sets, the history every night', async () => {
    const next = new Artifacts();
    const out = setup({ steps: '' }, { PARITY_PAGES_NIGHTS: '1' }, NEXT_NIGHT);
    expect(out['keep-nights']).toBe('1');
    await runLegs('cpu', out, every('wasm', 'aligned'), next);
    dashboardPass('dashboard', out, next);
    const published = site();
    expect(readdirSync(join(published, 'nightly'))).toEqual([NEXT_NIGHT]);
    expect(rows(published)).toEqual(Object.fromEntries(SUITES.map((s) => [legKey(s, 'wasm'), 'pass'])));
    const lines = history(published);
    expect(lines.filter((e) => e.date === NIGHT)).toHaveLength(3 * SUITES.length);
    expect(lines.filter((e) => e.date === NEXT_NIGHT)).toHaveLength(SUITES.length);
    // The pruned night stays in the grid, without links into folders that are gone.
    const html = readFileSync(join(published, 'index.html'), 'utf8');
    expect(html).toContain(`<tr><td>${NIGHT}</td>`);
    expect(html).not.toContain(`href="nightly/${NIGHT}/`);
  });
});
