/**
 * npm run align -- <suite name | folder> [--steps N] [--only forward|train] [--json FILE]
 *                  [--backend NAME] [--weights CHECKPOINT] [--reference stored|onnx|FILE.onnx[,FILE.onnx]]
 *                  [--ort-threads N] [--ort-optimization disabled|basic|extended|all] [--optimizer host|device] [--recompute]
 *                  [--reports DIR] [--no-report] [--allow-incomplete]
 * Exit 0 aligned, 1 misaligned, 2 unusable input.
 */
import { writeFileAtomic } from '../align/baseline/atomic.ts';
import { resolve } from 'node:path';
import { alignSuite, CHECKS, writeRunFolder, type Check } from '../align/run-suite.ts';
import { resolveSuiteDir } from '../align/suite.ts';
import { DEFAULT_ORT_SETTINGS, GRAPH_OPTIMIZATIONS, type GraphOptimization } from '../reference/onnx-runtime.ts';
import { InputError, EXIT_MISALIGNED, EXIT_PASS } from '../errors.ts';
import { progressReporter } from './progress.ts';
import { parseCli, runCli } from './run-cli.ts';
import { formatVerdict } from './verdict-table.ts';

const USAGE = 'usage: npm run align -- <suite|folder> [--steps N] [--only forward|train|generation] [--json FILE] [--backend tensorflow-gpu|webgpu|tensorflow|wasm|cpu] [--weights CHECKPOINT] [--reference stored|onnx|FILE.onnx[,FILE.onnx]] [--ort-threads N] [--ort-optimization disabled|basic|extended|all] [--optimizer host|device] [--recompute] [--reports DIR] [--no-report] [--allow-incomplete]';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    args: argv,
    allowPositionals: true,
    options: {
      steps: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'string' },
      backend: { type: 'string' },
      weights: { type: 'string' },
      reference: { type: 'string' },
      'ort-threads': { type: 'string', default: String(DEFAULT_ORT_SETTINGS.threads) },
      'ort-optimization': { type: 'string', default: DEFAULT_ORT_SETTINGS.optimization },
      reports: { type: 'string', default: 'reports' },
      'no-report': { type: 'boolean', default: false },
      optimizer: { type: 'string', default: 'host' },
      recompute: { type: 'boolean', default: false },
      'allow-incomplete': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }, USAGE);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_PASS;
  }
  if (positionals.length !== 1) throw new InputError(`expected one suite name or folder, got ${positionals.length}\n${USAGE}`);
  const steps = values.steps === undefined ? undefined : Number(values.steps);
  if (steps !== undefined && (!Number.isInteger(steps) || steps <= 0)) throw new InputError('--steps must be a positive integer', { actual: values.steps });
  const ortThreads = Number(values['ort-threads']);
  if (!Number.isInteger(ortThreads) || ortThreads <= 0) throw new InputError('--ort-threads must be a positive integer', { actual: values['ort-threads'] });
  if (values.optimizer !== 'host' && values.optimizer !== 'device') throw new InputError('unknown --optimizer', { expected: 'host | device', actual: values.optimizer });
  const optimization = values['ort-optimization'] as GraphOptimization;
  if (!GRAPH_OPTIMIZATIONS.includes(optimization)) throw new InputError('unknown --ort-optimization', { expected: GRAPH_OPTIMIZATIONS.join(' | '), actual: optimization });
  if (values.only !== undefined && !(CHECKS as readonly string[]).includes(values.only)) {
    throw new InputError('unknown --only', { expected: CHECKS.join(' | '), actual: values.only });
  }

  const result = await alignSuite({
    suiteDir: resolveSuiteDir(positionals[0], resolve('baselines')),
    steps,
    only: values.only as Check | undefined,
    backend: values.backend,
    weights: values.weights,
    reference: values.reference,
    ort: { threads: ortThreads, optimization },
    optimizer: values.optimizer,
    recompute: values.recompute,
    allowIncomplete: values['allow-incomplete'],
    log: (line) => process.stdout.write(`${line}\n`),
    onStep: progressReporter(process.stdout),
  });
  const { verdict } = result;
  // --no-report writes no run folder at all; --json still saves the verdict.
  const runDir = values['no-report'] ? null : await writeRunFolder({ reportsDir: values.reports }, result);
  process.stdout.write(`${formatVerdict(verdict)}\n${runDir ? `report: ${runDir}\n` : ''}`);
  if (values.json) writeFileAtomic(values.json, `${JSON.stringify(verdict, null, 2)}\n`);
  return verdict.pass ? EXIT_PASS : EXIT_MISALIGNED;
}

runCli(main);
