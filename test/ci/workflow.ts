/**
 * Reading the GitHub workflows in ci/github/ for the tests: parsing (the `yaml` package), walking
 * jobs and steps, and evaluating the few expression forms the workflows use, so a test can run a
 * step's own `run:` script with the environment GitHub would give it. An expression outside those
 * forms throws: the simulation must not quietly run something other than what the workflow says.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const WORKFLOW_DIR = 'ci/github';

export interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  'continue-on-error'?: boolean;
}

export interface Job {
  name?: string;
  needs?: string | string[];
  if?: string;
  'runs-on'?: unknown;
  'timeout-minutes'?: number;
  permissions?: Record<string, string>;
  strategy?: { matrix?: Record<string, unknown>; 'fail-fast'?: boolean };
  env?: Record<string, string>;
  outputs?: Record<string, string>;
  steps?: Step[];
  uses?: string;
  with?: Record<string, unknown>;
  concurrency?: { group: string; 'cancel-in-progress': unknown };
}

export interface Workflow {
  name: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  concurrency?: { group: string; 'cancel-in-progress': unknown };
  env?: Record<string, string>;
  defaults?: { run?: { shell?: string } };
  jobs: Record<string, Job>;
}

export function workflowFiles(): string[] {
  return readdirSync(WORKFLOW_DIR)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort();
}

export function readWorkflowText(file: string): string {
  return readFileSync(join(WORKFLOW_DIR, file), 'utf8');
}

export function loadWorkflow(file: string): Workflow {
  return parse(readWorkflowText(file)) as Workflow;
}

/** Every step of every job, with where it is. */
export function allSteps(): Array<{ file: string; job: string; step: Step }> {
  return workflowFiles().flatMap((file) => Object.entries(loadWorkflow(file).jobs).flatMap(([job, j]) => (j.steps ?? []).map((step) => ({ file, job, step }))));
}

export function stepNamed(job: Job, name: string | RegExp): Step {
  const found = (job.steps ?? []).filter((s) => (typeof name === 'string' ? s.name === name || s.id === name : name.test(s.name ?? s.uses ?? '')));
  if (found.length !== 1) throw new Error(`expected one step ${name}, found ${found.length}`);
  return found[0];
}

export function stepUsing(job: Job, action: string): Step[] {
  return (job.steps ?? []).filter((s) => s.uses?.split('@')[0] === action);
}

export type Context = Record<string, unknown>;

function lookup(path: string, ctx: Context): unknown {
  let value: unknown = ctx;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object' || !(key in (value as object))) throw new Error(`expression ${path}: no ${key}`);
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** `a.b.c`, `fromJSON(a.b)`, `'text'` and `x == 'text'`: the forms the simulated steps use. */
export function evaluate(expression: string, ctx: Context): unknown {
  const e = expression.trim();
  let m: RegExpExecArray | null;
  if ((m = /^'([^']*)'$/.exec(e))) return m[1];
  if ((m = /^fromJSON\(([\w.-]+)\)$/.exec(e))) return JSON.parse(String(lookup(m[1], ctx)));
  if ((m = /^([\w.-]+) == '([^']*)'$/.exec(e))) return String(lookup(m[1], ctx)) === m[2];
  if (/^[\w.-]+$/.test(e)) return lookup(e, ctx);
  throw new Error(`expression not understood by the simulation: ${e}`);
}

/** A string with `${{ … }}` parts evaluated; a string that is one expression keeps its value's type. */
export function expand(template: unknown, ctx: Context): unknown {
  if (typeof template !== 'string') return template;
  const whole = /^\$\{\{(.*)\}\}$/s.exec(template.trim());
  if (whole && !whole[1].includes('}}')) return evaluate(whole[1], ctx);
  return template.replace(/\$\{\{(.*?)\}\}/g, (_, e: string) => String(evaluate(e, ctx)));
}

export function expandAll(values: Record<string, unknown> | undefined, ctx: Context): Record<string, string> {
  return Object.fromEntries(Object.entries(values ?? {}).map(([k, v]) => [k, String(expand(v, ctx))]));
}

/** The glob of actions/download-artifact's `pattern` (minimatch): `*` and `?` within a name. */
export function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(name);
}
