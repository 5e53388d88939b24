#!/usr/bin/env node
// The CI matrix, in one place. Both workflows read it from here (a setup job), so adding a suite
// is adding its folder to baselines/ and nothing else.
//
//   suites        every folder of baselines/ holding train_curve.json or forward_*.safetensors
//                 (the rule of hasReferences in src/align/nightly.ts; a test keeps the two equal)
//   backend       the backend PR jobs and the nightly's CPU legs pin: the one whose goldens are
//                 shipped (baselines/*/golden.wasm.json)
//   gpu           "true" only when the repository variable PARITY_GPU is "true"
//   gpu-runner    runs-on labels of the GPU runner (PARITY_GPU_RUNNER, a JSON list)
//   gpu-backends  backends of the GPU legs (PARITY_GPU_BACKENDS, a JSON list)
//   all-backends  every backend the night's legs run, comma-separated (what the last merge expects)
//   night         the UTC date the run started: every leg files its run under it, also a leg that
//                 starts after midnight or is re-run the next day (PARITY_NIGHT, when set, instead
//                 of the clock: the simulation in test/ci/matrix.test.ts)
//   steps         the step count asked for by hand (STEPS), "" for the whole reference curve
//   keep-nights   nights kept on the published site (PARITY_PAGES_NIGHTS)
//
// Plain Node, no dependencies: it runs before `npm ci`. Writes `key=value` lines to
// $GITHUB_OUTPUT when set, and prints them. A bad variable or input stops the run here (exit 1).
// usage: node ci/matrix.mjs [--baselines DIR]
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const CPU_BACKEND = 'wasm';
const DEFAULTS = { gpuRunner: ['self-hosted', 'gpu'], gpuBackends: ['webgpu'], keepNights: 30 };
const KNOWN_GPU_BACKENDS = ['webgpu', 'tensorflow-gpu'];

function fail(message) {
  console.log(`::error::${message}`);
  process.exit(1);
}

function isSuite(dir) {
  try {
    if (!statSync(dir).isDirectory()) return false;
  } catch {
    return false;
  }
  return readdirSync(dir).some((name) => name === 'train_curve.json' || /^forward_.+\.safetensors$/.test(name));
}

function jsonList(name, raw, fallback) {
  if (raw === undefined || raw.trim() === '') return fallback;
  let value;
  try {
    value = JSON.parse(raw);
  } catch {
    fail(`${name} must be a JSON list of strings, like ${JSON.stringify(fallback)}; it is ${raw}`);
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every((x) => typeof x === 'string' && x !== '')) fail(`${name} must be a non-empty JSON list of strings; it is ${raw}`);
  return value;
}

function positive(name, raw, fallback) {
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^[1-9][0-9]*$/.test(raw.trim())) fail(`${name} must be a positive whole number; it is "${raw}"`);
  return Number(raw.trim());
}

const args = process.argv.slice(2);
const at = args.indexOf('--baselines');
const baselines = at >= 0 ? args[at + 1] : 'baselines';
let names;
try {
  names = readdirSync(baselines);
} catch {
  fail(`no baselines folder at ${baselines}`);
}
const suites = names.filter((n) => isSuite(join(baselines, n))).sort();
if (suites.length === 0) fail(`no suite folders (with train_curve.json or forward_*.safetensors) in ${baselines}`);

const env = process.env;
const gpu = env.PARITY_GPU === 'true';
const gpuBackends = jsonList('PARITY_GPU_BACKENDS', env.PARITY_GPU_BACKENDS, DEFAULTS.gpuBackends);
for (const b of gpuBackends) if (!KNOWN_GPU_BACKENDS.includes(b)) fail(`PARITY_GPU_BACKENDS names "${b}"; GPU legs run ${KNOWN_GPU_BACKENDS.join(' or ')}`);
const steps = positive('the steps input', env.STEPS, '');
const night = env.PARITY_NIGHT || new Date().toISOString().slice(0, 10);
if (!/^\d{4}-\d{2}-\d{2}$/.test(night)) fail(`PARITY_NIGHT must be YYYY-MM-DD; it is ${night}`);

const outputs = {
  suites: JSON.stringify(suites),
  backend: CPU_BACKEND,
  gpu: String(gpu),
  'gpu-runner': JSON.stringify(jsonList('PARITY_GPU_RUNNER', env.PARITY_GPU_RUNNER, DEFAULTS.gpuRunner)),
  'gpu-backends': JSON.stringify(gpuBackends),
  'all-backends': [CPU_BACKEND, ...(gpu ? gpuBackends : [])].join(','),
  night,
  steps: String(steps),
  'keep-nights': String(positive('PARITY_PAGES_NIGHTS', env.PARITY_PAGES_NIGHTS, DEFAULTS.keepNights)),
};
const lines = Object.entries(outputs).map(([k, v]) => `${k}=${v}\n`).join('');
if (env.GITHUB_OUTPUT) appendFileSync(env.GITHUB_OUTPUT, lines);
process.stdout.write(lines);
