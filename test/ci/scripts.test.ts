/**
 * The scripts the workflows run: ci/matrix.mjs (the matrix in one place), ci/check-backend.ts,
 * ci/restore-history.sh and ci/publish-pages.sh against a local bare repository standing in for
 * GitHub.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectSuites } from '../../src/align/nightly.ts';

const ROOT = resolve('.');
const tmp = () => mkdtempSync(join(tmpdir(), 'parity-ci-'));

function matrix(env: Record<string, string> = {}, args: string[] = []) {
  const r = spawnSync('node', ['ci/matrix.mjs', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  const outputs = Object.fromEntries(r.stdout.split('\n').filter((l) => /^[\w-]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { status: r.status, stdout: r.stdout, outputs };
}

describe('ci/matrix.mjs', () => {
  it('lists the suites align would find in baselines/ (the rule of selectSuites)', () => {
    const { outputs, status } = matrix();
    expect(status).toBe(0);
    expect(JSON.parse(outputs.suites)).toEqual(selectSuites('baselines'));
    // Another baselines folder, with a folder that is no suite and a forward-only suite.
    const dir = tmp();
    for (const [name, file] of [['zeta', 'train_curve.json'], ['alpha', 'forward_initial.safetensors'], ['notes', 'README.md'], ['beta', 'forward_.safetensors']]) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, file), '');
    }
    expect(JSON.parse(matrix({}, ['--baselines', dir]).outputs.suites)).toEqual(selectSuites(dir));
    expect(selectSuites(dir)).toEqual(['alpha', 'zeta']);
  });

  it('pins wasm, keeps the GPU legs off by default, and takes the night from the clock', () => {
    const { outputs } = matrix({ PARITY_NIGHT: '2026-03-04' });
    expect(outputs).toMatchObject({ backend: 'wasm', gpu: 'false', 'all-backends': 'wasm', 'gpu-runner': '["self-hosted","gpu"]', 'gpu-backends': '["webgpu"]', night: '2026-03-04', steps: '', 'keep-nights': '30' });
    expect(matrix().outputs.night).toBe(new Date().toISOString().slice(0, 10));
  });

  it('turns the GPU legs on only for PARITY_GPU=true, with the runner and backends from variables', () => {
    expect(matrix({ PARITY_GPU: 'yes' }).outputs.gpu).toBe('false');
    const { outputs } = matrix({ PARITY_GPU: 'true', PARITY_GPU_RUNNER: '["self-hosted","linux","a100"]', PARITY_GPU_BACKENDS: '["webgpu","tensorflow-gpu"]', PARITY_PAGES_NIGHTS: '14', STEPS: '50' });
    expect(outputs).toMatchObject({ gpu: 'true', 'gpu-runner': '["self-hosted","linux","a100"]', 'all-backends': 'wasm,webgpu,tensorflow-gpu', 'keep-nights': '14', steps: '50' });
  });

  it('writes its outputs to $GITHUB_OUTPUT', () => {
    const file = join(tmp(), 'out');
    spawnSync('node', ['ci/matrix.mjs'], { env: { PATH: process.env.PATH, GITHUB_OUTPUT: file } });
    expect(readFileSync(file, 'utf8')).toMatch(/^suites=\[.*\]\nbackend=wasm\n/);
  });

  it.each([
    [{ STEPS: '0' }, /steps input must be a positive whole number/],
    [{ STEPS: '5; rm -rf /' }, /steps input/],
    [{ PARITY_GPU_RUNNER: 'gpu' }, /PARITY_GPU_RUNNER must be a JSON list/],
    [{ PARITY_GPU_BACKENDS: '["cuda"]' }, /names "cuda"/],
    [{ PARITY_PAGES_NIGHTS: '-1' }, /PARITY_PAGES_NIGHTS/],
  ])('stops the run at a bad input %j', (env, message) => {
    const r = matrix(env);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^::error::/);
    expect(r.stdout).toMatch(message);
  });
});

describe('ci/check-backend.ts', () => {
  it('passes for a backend that loads and computes, and fails with the reason for one that cannot', () => {
    const ok = spawnSync('npx', ['tsx', 'ci/check-backend.ts', 'cpu'], { encoding: 'utf8' });
    expect(ok.stdout).toContain('backend cpu (tfjs "cpu") loads and computes');
    expect(ok.status).toBe(0);
    // tfjs-node-gpu is not installed here: exactly the state npm leaves after a failed install script.
    const missing = spawnSync('npx', ['tsx', 'ci/check-backend.ts', 'tensorflow-gpu'], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/backend "tensorflow-gpu" was requested but cannot be used/);
  });

  it('with --hardware, refuses WebGPU on a software adapter (a GPU leg on a runner without the vendor driver)', (ctx) => {
    const any = spawnSync('npx', ['tsx', 'ci/check-backend.ts', 'webgpu'], { encoding: 'utf8' });
    // Which adapter this machine has decides what can be shown: none, a software one, or a GPU.
    if (any.status !== 0 || !any.stdout.includes('(software)')) return ctx.skip();
    const strict = spawnSync('npx', ['tsx', 'ci/check-backend.ts', 'webgpu', '--hardware'], { encoding: 'utf8' });
    expect(strict.status).toBe(2);
    expect(strict.stderr).toMatch(/a CPU posing as a GPU.*expected a hardware adapter/s);
  });
});

/** A clone whose origin is a bare repository: GitHub as far as git is concerned. */
function repository() {
  const root = tmp();
  execFileSync('git', ['init', '-q', '--bare', join(root, 'origin.git')]);
  execFileSync('git', ['init', '-q', join(root, 'clone')]);
  execFileSync('git', ['-C', join(root, 'clone'), 'remote', 'add', 'origin', join(root, 'origin.git')]);
  const run = (script: string, ...args: string[]) => spawnSync(join(ROOT, 'ci', script), args, { cwd: join(root, 'clone'), encoding: 'utf8' });
  const published = () => execFileSync('git', ['--git-dir', join(root, 'origin.git'), 'ls-tree', '-r', '--name-only', 'gh-pages'], { encoding: 'utf8' }).trim().split('\n');
  const show = (path: string) => execFileSync('git', ['--git-dir', join(root, 'origin.git'), 'show', `gh-pages:${path}`], { encoding: 'utf8' });
  const commits = () => execFileSync('git', ['--git-dir', join(root, 'origin.git'), 'rev-list', '--count', 'gh-pages'], { encoding: 'utf8' }).trim();
  return { root, run, published, show, commits };
}

/** A merged site as `npm run dashboard` leaves it, with one run folder per night given. */
function site(dir: string, nights: Record<string, string>, history: string): string {
  mkdirSync(dir, { recursive: true });
  for (const [night, content] of Object.entries(nights)) {
    mkdirSync(join(dir, 'nightly', night, 'bert', 'wasm'), { recursive: true });
    writeFileSync(join(dir, 'nightly', night, 'bert', 'wasm', 'verdict.json'), content);
  }
  writeFileSync(join(dir, 'index.html'), `<p>${history}</p>`);
  writeFileSync(join(dir, 'history.jsonl'), history);
  writeFileSync(join(dir, 'plotly.js'), '// plotly');
  return dir;
}

describe('ci/publish-pages.sh and ci/restore-history.sh', () => {
  it('start a new history when gh-pages does not exist yet, then restore what was published', () => {
    const repo = repository();
    const restore = repo.run('restore-history.sh', join(repo.root, 'reports'));
    expect(restore.status).toBe(0);
    expect(restore.stdout).toContain('no gh-pages branch');
    const pub = repo.run('publish-pages.sh', site(join(repo.root, 'site1'), { '2026-01-01': 'v1' }, 'h1\n'), '2');
    expect(pub.status, pub.stderr).toBe(0);
    expect(repo.published()).toEqual(['.nojekyll', 'history.jsonl', 'index.html', 'nightly/2026-01-01/bert/wasm/verdict.json', 'plotly.js']);
    expect(repo.run('restore-history.sh', join(repo.root, 'reports')).status).toBe(0);
    expect(readFileSync(join(repo.root, 'reports', 'history.jsonl'), 'utf8')).toBe('h1\n');
  });

  it('replace run folders whole, keep other nights, prune to the window and stay one commit', () => {
    const repo = repository();
    repo.run('publish-pages.sh', site(join(repo.root, 's1'), { '2026-01-01': 'v1' }, 'h1\n'), '2');
    const s2 = site(join(repo.root, 's2'), { '2026-01-02': 'v2' }, 'h2\n');
    writeFileSync(join(s2, 'nightly', '2026-01-02', 'bert', 'wasm', 'stale.txt'), 'from the first attempt');
    repo.run('publish-pages.sh', s2, '2');
    // A re-run of the same night: its folder replaces the published one, stale file and all.
    repo.run('publish-pages.sh', site(join(repo.root, 's2b'), { '2026-01-02': 'v2 again' }, 'h2b\n'), '2');
    expect(repo.show('nightly/2026-01-02/bert/wasm/verdict.json')).toBe('v2 again');
    expect(repo.published()).not.toContain('nightly/2026-01-02/bert/wasm/stale.txt');
    expect(repo.published().filter((p) => p.startsWith('nightly/'))).toEqual(['nightly/2026-01-01/bert/wasm/verdict.json', 'nightly/2026-01-02/bert/wasm/verdict.json']);
    const third = repo.run('publish-pages.sh', site(join(repo.root, 's3'), { '2026-01-03': 'v3' }, 'h3\n'), '2');
    expect(third.stdout).toContain('pruning night 2026-01-01');
    expect(repo.published().filter((p) => p.startsWith('nightly/'))).toEqual(['nightly/2026-01-02/bert/wasm/verdict.json', 'nightly/2026-01-03/bert/wasm/verdict.json']);
    expect(repo.show('history.jsonl')).toBe('h3\n');
    expect(repo.commits()).toBe('1');
  });

  it('refuse to publish over a branch that moved since it was read', () => {
    const repo = repository();
    repo.run('publish-pages.sh', site(join(repo.root, 's1'), { '2026-01-01': 'v1' }, 'h1\n'), '30');
    // Another publish moves the branch after this one read it and before it pushes: a `git` first
    // on PATH does that on `push`, then hands over to the real git.
    const other = join(repo.root, 'other');
    execFileSync('git', ['clone', '-q', '-b', 'gh-pages', join(repo.root, 'origin.git'), other]);
    const bin = join(repo.root, 'bin');
    mkdirSync(bin);
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    writeFileSync(
      join(bin, 'git'),
      `#!/bin/sh\nif [ "$1" = push ]; then (cd ${other} && ${realGit} -c user.name=x -c user.email=x@x commit -q --allow-empty -m moved && ${realGit} push -q origin gh-pages) || exit 9; fi\nexec ${realGit} "$@"\n`,
      { mode: 0o755 },
    );
    const r = spawnSync(join(ROOT, 'ci', 'publish-pages.sh'), [site(join(repo.root, 's2'), { '2026-01-02': 'v2' }, 'h2\n'), '30'], {
      cwd: join(repo.root, 'clone'),
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/stale info|rejected/);
    expect(execFileSync('git', ['--git-dir', join(repo.root, 'origin.git'), 'log', '-1', '--format=%s', 'gh-pages'], { encoding: 'utf8' }).trim()).toBe('moved');
  });

  it('stop rather than start over when the remote cannot be read', () => {
    const repo = repository();
    execFileSync('git', ['-C', join(repo.root, 'clone'), 'remote', 'set-url', 'origin', join(repo.root, 'nowhere.git')]);
    const restore = repo.run('restore-history.sh', join(repo.root, 'reports'));
    expect(restore.status).toBe(1);
    expect(restore.stderr).toContain('cannot read origin');
    const pub = repo.run('publish-pages.sh', site(join(repo.root, 's1'), { '2026-01-01': 'v1' }, 'h1\n'), '30');
    expect(pub.status).toBe(1);
    expect(readdirSync(join(repo.root))).not.toContain('nowhere.git');
  });

  it('refuse a folder that is not a merged site, and a bad window', () => {
    const repo = repository();
    const empty = join(repo.root, 'empty');
    mkdirSync(empty);
    expect(repo.run('publish-pages.sh', empty, '30').status).toBe(2);
    expect(repo.run('publish-pages.sh', site(join(repo.root, 's'), {}, ''), '0').status).toBe(2);
  });
});
