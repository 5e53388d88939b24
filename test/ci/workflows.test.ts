/**
 * The GitHub workflows in ci/github/, checked as far as this machine can: the workflow schema
 * (@action-validator/core, the validator behind @action-validator/cli), then the properties that
 * make them hold up when GitHub re-runs, cancels and retries them (each test names the failure it
 * exists to catch), and every `run:` script through shellcheck when it is installed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { describe, expect, it } from 'vitest';
import { selectSuites } from '../../src/align/nightly.ts';
import { allSteps, globMatches, loadWorkflow, readWorkflowText, stepNamed, stepUsing, workflowFiles } from './workflow.ts';

/**
 * The current major of each action used (checked against the actions' releases in 2026: checkout
 * v7, setup-node v7, upload-artifact v7, download-artifact v8 all run on Node 24; v4 ran on the
 * retired Node 20). A newer major is fine; an older one fails here.
 */
const CURRENT_MAJORS: Record<string, number> = {
  'actions/checkout': 7,
  'actions/setup-node': 7,
  'actions/upload-artifact': 7,
  'actions/download-artifact': 8,
};

const nightly = () => loadWorkflow('nightly.yml');
const dashboard = () => loadWorkflow('nightly-dashboard.yml');
const pr = () => loadWorkflow('pr.yml');
const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0;

/** Every `if:` of jobs and steps, with where it is. */
function conditions(): Array<{ where: string; condition: string }> {
  return workflowFiles().flatMap((file) =>
    Object.entries(loadWorkflow(file).jobs).flatMap(([name, job]) => [
      ...(job.if ? [{ where: `${file} ${name}`, condition: job.if }] : []),
      ...(job.steps ?? []).filter((s) => s.if).map((s) => ({ where: `${file} ${name} ${s.name ?? s.uses ?? s.id}`, condition: s.if! })),
    ]),
  );
}

describe('the workflow files', () => {
  it('are the three this directory documents', () => {
    expect(workflowFiles()).toEqual(['nightly-dashboard.yml', 'nightly.yml', 'pr.yml']);
  });

  it.each(workflowFiles())('%s passes the workflow schema', (file) => {
    const result = validateWorkflow(readWorkflowText(file));
    expect(result.errors).toEqual([]);
  });

  it('the validator rejects a broken workflow (so the check above can fail)', () => {
    const broken = readWorkflowText('pr.yml').replace('timeout-minutes: 30', 'timeout-minute: 30');
    expect(validateWorkflow(broken).errors.length).toBeGreaterThan(0);
  });

  it('use the current major of every action', () => {
    const used = allSteps().filter(({ step }) => step.uses && !step.uses.startsWith('./'));
    expect(used.length).toBeGreaterThan(10);
    for (const { file, job, step } of used) {
      const [action, ref] = step.uses!.split('@');
      expect(CURRENT_MAJORS[action], `${file} ${job}: ${action} is not a known action`).toBeDefined();
      expect(Number(/^v(\d+)/.exec(ref)?.[1]), `${file} ${job}: ${step.uses}`).toBeGreaterThanOrEqual(CURRENT_MAJORS[action]);
    }
  });

  it('call reusable workflows that are here', () => {
    const calls = workflowFiles().flatMap((f) => Object.values(loadWorkflow(f).jobs).filter((j) => j.uses).map((j) => j.uses!));
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      const m = /^\.\/\.github\/workflows\/(.+\.yml)$/.exec(call);
      expect(m, call).not.toBeNull();
      expect(existsSync(join('ci', 'github', m![1])), call).toBe(true);
      expect(loadWorkflow(m![1]).on).toHaveProperty('workflow_call');
    }
  });

  it('pass the inputs a reusable workflow requires, and only inputs it declares', () => {
    const declared = dashboard().on.workflow_call as { inputs: Record<string, { required?: boolean }> };
    for (const [name, job] of Object.entries(nightly().jobs).filter(([, j]) => j.uses)) {
      const given = Object.keys(job.with ?? {});
      for (const g of given) expect(declared.inputs, `${name} passes ${g}`).toHaveProperty(g);
      for (const [input, spec] of Object.entries(declared.inputs)) if (spec.required) expect(given, `${name} must pass ${input}`).toContain(input);
    }
  });

  it('bound every job that runs on a runner with a timeout', () => {
    for (const file of workflowFiles()) {
      for (const [name, job] of Object.entries(loadWorkflow(file).jobs)) {
        if (job.uses) continue; // a reusable workflow's jobs carry their own
        expect(job['timeout-minutes'], `${file} ${name}`).toBeGreaterThan(0);
        expect(job['timeout-minutes'], `${file} ${name}`).toBeLessThanOrEqual(60);
      }
    }
  });

  it('run bash with -e and pipefail everywhere (defaults.run.shell: bash)', () => {
    for (const file of workflowFiles()) expect(loadWorkflow(file).defaults?.run?.shell, file).toBe('bash');
  });

  it('keep expressions out of run scripts: values reach them through env (no script injection, shellcheck reads them)', () => {
    for (const { file, job, step } of allSteps()) if (step.run) expect(step.run, `${file} ${job} ${step.name ?? ''}`).not.toContain('${{');
  });
});

describe('artifacts', () => {
  const uploads = () => allSteps().filter(({ step }) => step.uses?.startsWith('actions/upload-artifact@'));
  /** An artifact name template with each expression replaced by a sample value. */
  const sample = (template: string) => template.replace(/\$\{\{[^}]*\}\}/g, 'x1');

  it('every upload sets overwrite: true, so a re-run replaces its artifact instead of failing with 409', () => {
    expect(uploads().length).toBeGreaterThanOrEqual(5);
    for (const { file, job, step } of uploads()) expect(step.with?.overwrite, `${file} ${job}: ${step.with?.name}`).toBe(true);
  });

  it('the merge downloads the legs and never the dashboard’s own site artifact from an earlier attempt', () => {
    const download = stepUsing(dashboard().jobs.merge, 'actions/download-artifact')[0];
    const pattern = String(download.with?.pattern);
    const names = uploads().map(({ step }) => String(step.with?.name));
    const legs = names.filter((n) => n.startsWith('leg-'));
    const others = names.filter((n) => !n.startsWith('leg-'));
    expect(legs).toHaveLength(2); // the CPU and the GPU legs
    for (const n of legs) expect(globMatches(pattern, sample(n)), n).toBe(true);
    for (const n of others) expect(globMatches(pattern, sample(n)), n).toBe(false);
    // The pattern of the original defect matched the dashboard's upload.
    expect(globMatches('nightly-*', 'nightly-site-cpu')).toBe(true);
  });

  it('legs name their artifact by suite and backend, distinct across the matrix', () => {
    const legs = uploads().filter(({ step }) => String(step.with?.name).startsWith('leg-'));
    expect(legs.map(({ job, step }) => [job, step.with?.name])).toEqual([
      ['cpu', 'leg-${{ matrix.suite }}-${{ needs.setup.outputs.backend }}'],
      ['gpu', 'leg-${{ matrix.suite }}-${{ matrix.backend }}'],
    ]);
  });

  it('legs upload their run folder only, not the reports tree with its 11 MB plotly bundle', () => {
    for (const job of [nightly().jobs.cpu, nightly().jobs.gpu]) expect(stepUsing(job, 'actions/upload-artifact')[0].with?.path).toBe('reports/nightly/');
    const align = stepUsing(pr().jobs.align, 'actions/upload-artifact')[0];
    expect(String(align.with?.path).split('\n').map((s) => s.trim())).toContain('!reports/**/plotly.js');
  });

  it('the PR summary downloads the align runs and not the browser test pages', () => {
    const pattern = String(stepUsing(pr().jobs.summary, 'actions/download-artifact')[0].with?.pattern);
    expect(globMatches(pattern, sample(String(stepUsing(pr().jobs.align, 'actions/upload-artifact')[0].with?.name)))).toBe(true);
    expect(globMatches(pattern, sample(String(stepUsing(pr().jobs.test, 'actions/upload-artifact')[0].with?.name)))).toBe(false);
  });

  it('the publish job downloads the site its merge job uploaded', () => {
    const up = stepUsing(dashboard().jobs.merge, 'actions/upload-artifact')[0];
    const down = stepUsing(dashboard().jobs.publish, 'actions/download-artifact')[0];
    expect(down.with?.name).toBe(up.with?.name);
  });
});

describe('cancelled runs, concurrency and permissions', () => {
  it('nothing runs on always(): a cancelled run is neither merged nor published', () => {
    const all = conditions();
    expect(all.length).toBeGreaterThan(5);
    for (const { where, condition } of all) expect(condition, where).not.toMatch(/always\(\)/);
    for (const job of [nightly().jobs.dashboard, nightly().jobs['dashboard-gpu'], dashboard().jobs.publish, pr().jobs.summary]) expect(job.if).toContain('!cancelled()');
  });

  it('pr.yml cancels an older run of the same pull request, never a push to main', () => {
    const c = pr().concurrency!;
    expect(c['cancel-in-progress']).toBe("${{ github.event_name == 'pull_request' }}");
    // Pushes get a group of their own commit.
    expect(c.group).toContain('github.sha');
    expect(c.group).toContain('github.event.pull_request.number');
  });

  it('nightly.yml runs one night at a time; a new scheduled night cancels a stale one, a run by hand queues', () => {
    expect(nightly().concurrency).toEqual({ group: 'nightly', 'cancel-in-progress': "${{ github.event_name == 'schedule' }}" });
    expect(dashboard().jobs.publish.concurrency).toEqual({ group: 'nightly-pages', 'cancel-in-progress': false });
  });

  it('only the publish job can write, and it installs and runs none of the project’s packages', () => {
    for (const file of workflowFiles()) {
      const w = loadWorkflow(file);
      expect(w.permissions, file).toEqual({ contents: 'read' });
      for (const [name, job] of Object.entries(w.jobs)) {
        if (job.permissions?.contents !== 'write') continue;
        if (job.uses) continue; // a caller grants what the called workflow's publish job needs
        expect(`${file} ${name}`).toBe('nightly-dashboard.yml publish');
        expect(stepUsing(job, 'actions/setup-node')).toEqual([]);
        for (const s of job.steps ?? []) expect(s.run ?? '', s.name).not.toMatch(/\bnpm\b|\bnpx\b|\bnode\b|\btsx\b/);
      }
    }
    expect(dashboard().jobs.merge.permissions).toEqual({ contents: 'read' });
  });
});

describe('the matrix and the legs', () => {
  it('lists no suite in a workflow: every matrix of suites comes from ci/matrix.mjs', () => {
    const suites = selectSuites('baselines');
    for (const file of workflowFiles()) {
      const text = readWorkflowText(file);
      for (const s of suites) expect(text, `${file} names ${s}`).not.toMatch(new RegExp(`[\\s'"\\[,]${s}[\\s'"\\],]`));
    }
    for (const job of [nightly().jobs.cpu, nightly().jobs.gpu, pr().jobs.align]) expect(job.strategy?.matrix?.suite).toBe('${{ fromJSON(needs.setup.outputs.suites) }}');
    for (const w of [nightly(), pr()]) expect(stepNamed(w.jobs.setup, 'matrix').run).toBe('node ci/matrix.mjs');
  });

  it('the GPU leg is off unless a repository variable turns it on, and the first dashboard does not wait for it', () => {
    const { gpu, dashboard: first, setup } = nightly().jobs;
    expect(gpu.if).toBe("${{ needs.setup.outputs.gpu == 'true' }}");
    expect(gpu['runs-on']).toBe('${{ fromJSON(needs.setup.outputs.gpu-runner) }}');
    expect(stepNamed(setup, 'matrix').env?.PARITY_GPU).toBe('${{ vars.PARITY_GPU }}');
    expect(first.needs).toEqual(['setup', 'cpu', 'bench']); // the CPU benchmarks, never a GPU leg
    expect(nightly().jobs['dashboard-gpu'].needs).toEqual(['setup', 'gpu', 'dashboard']);
  });

  it('checks right after installing tfjs-node-gpu, and before aligning on any GPU backend, that the backend loads', () => {
    const steps = nightly().jobs.gpu.steps!;
    const install = steps.findIndex((s) => s.run?.includes('@tensorflow/tfjs-node-gpu'));
    const check = steps.findIndex((s) => s.run === 'npx tsx ci/check-backend.ts "$BACKEND" --hardware');
    const align = steps.findIndex((s) => s.run?.startsWith('ci/nightly.sh'));
    expect(install).toBeGreaterThan(0);
    expect(check).toBe(install + 1);
    expect(align).toBeGreaterThan(check);
    expect(steps[check].if).toBeUndefined();
  });

  it('pins PR aligns and CPU legs to the backend whose goldens are shipped', () => {
    const shipped = selectSuites('baselines').filter((s) => existsSync(join('baselines', s, 'train_curve.json')));
    for (const s of shipped) expect(existsSync(join('baselines', s, 'golden.wasm.json')), s).toBe(true);
    expect(stepNamed(pr().jobs.align, /^Align/).run).toContain('--backend "$BACKEND"');
    expect(pr().jobs.align.steps!.find((s) => s.name?.startsWith('Align'))!.env?.BACKEND).toBe('${{ needs.setup.outputs.backend }}');
    expect(stepNamed(nightly().jobs.cpu, /^Align/).run).toContain('--backend "$BACKEND"');
    const out = spawnSync('node', ['ci/matrix.mjs'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(out.stdout).toContain('backend=wasm\n');
  });

  it('every leg files its run under the night setup read, with the step count asked for', () => {
    for (const job of [nightly().jobs.cpu, nightly().jobs.gpu]) {
      expect(stepNamed(job, /^Align/).run).toBe('ci/nightly.sh --suites "$SUITE" --backend "$BACKEND" --date "$NIGHT" ${STEPS:+--steps "$STEPS"}');
      expect(job.env).toMatchObject({ NIGHT: '${{ needs.setup.outputs.night }}', STEPS: '${{ needs.setup.outputs.steps }}' });
    }
  });

  it('runs Node from ci/node-version, and tests Node 22 alongside 20', () => {
    expect(readFileSync('ci/node-version', 'utf8').trim()).toBe('22');
    for (const { file, job, step } of allSteps().filter(({ step: s }) => s.uses?.startsWith('actions/setup-node@'))) {
      const w = step.with ?? {};
      expect(w['node-version-file'] ?? w['node-version'], `${file} ${job}`).toMatch(/^ci\/node-version$|^\$\{\{ matrix\.node \}\}$/);
    }
    expect(pr().jobs.test.strategy?.matrix?.node).toEqual(expect.arrayContaining(['20', '22']));
  });
});

describe('documentation', () => {
  it('ci/README.md explains every repository variable the workflows read', () => {
    const readme = readFileSync('ci/README.md', 'utf8');
    const vars = new Set(workflowFiles().flatMap((f) => [...readWorkflowText(f).matchAll(/vars\.([A-Z_]+)/g)].map((m) => m[1])));
    expect([...vars].sort()).toEqual(['PARITY_GPU', 'PARITY_GPU_BACKENDS', 'PARITY_GPU_RUNNER', 'PARITY_PAGES_NIGHTS']);
    for (const v of vars) expect(readme, v).toContain(`\`${v}\``);
    for (const topic of ['gh-pages', 'Vulkan', 'webgpu', 'tensorflow-gpu', 'contents: write']) expect(readme, topic).toContain(topic);
  });
});

describe.skipIf(!hasShellcheck)('shellcheck', () => {
  const scripts = ['.ci/run', ...readdirSync('ci').filter((f) => f.endsWith('.sh')).map((f) => `ci/${f}`)];

  it.each(scripts)('%s is clean', (script) => {
    const r = spawnSync('shellcheck', ['--severity=style', script], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('every run: script of the workflows is clean, as bash with -e and pipefail', () => {
    const runs = allSteps().filter(({ step }) => step.run);
    expect(runs.length).toBeGreaterThan(10);
    for (const { file, job, step } of runs) {
      const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', '-'], { input: `#!/usr/bin/env bash\nset -eo pipefail\n${step.run}`, encoding: 'utf8' });
      expect(r.stdout, `${file} ${job} ${step.name ?? step.run}`).toBe('');
    }
  });

  it('catches a cd without || exit (so the checks above can fail)', () => {
    const r = spawnSync('shellcheck', ['--shell=bash', '-'], { input: '#!/usr/bin/env bash\ncd "$(dirname "$0")/.."\nls\n', encoding: 'utf8' });
    expect(r.stdout).toContain('SC2164');
  });
});

describe('without shellcheck, the one rule that matters most', () => {
  it('every cd in the shell scripts has || exit', () => {
    for (const script of ['.ci/run', ...readdirSync('ci').filter((f) => f.endsWith('.sh')).map((f) => `ci/${f}`)]) {
      for (const line of readFileSync(script, 'utf8').split('\n')) {
        if (/^\s*cd\s/.test(line)) expect(line, script).toMatch(/\|\|\s*exit/);
      }
    }
  });
});
