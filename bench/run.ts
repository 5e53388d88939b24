/**
 * npm run bench [-- --suites bert,gpt2|none --size bert-base,gpt2,t5-base --steps 60 --warmup 10
 *                  --rows 2 --seq 128 --size-steps 3 --backend wasm --torch --readers --forward-only --out FILE]
 *
 * Per shipped suite (default: every suite with a config and batches) and per real-size preset
 * (--size; random weights at bert-base / gpt2 / t5-base shapes, nothing downloaded): ms per
 * training step, forward ms, achieved GFLOP/s, and peak RSS. Each workload runs in its own process
 * (bench/workload.ts) so its peak RSS is its own. Also measured in the same run: the backend's
 * matmul peak (1024², one call), so GFLOP/s can be read against what the backend can do at all.
 *
 * --torch: the same GPT-2 workloads in PyTorch (bench/torch_gpt2.py, a plain-torch GPT-2 with HF's
 * semantics), one thread, with the BLAS torch reports, as the side-by-side baseline; it needs a
 * python3 with torch (PARITY_TORCH_PYTHON, default python3) and is skipped, saying why, without one.
 * --readers: the checkpoint reader benchmarks (~1 GB files). Prints JSON; --out writes it too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { tf } from '../src/backend/tf.ts';
import { ortVersion } from '../src/reference/onnx-runtime.ts';

const { values } = parseArgs({
  options: {
    suites: { type: 'string' },
    size: { type: 'string' },
    steps: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    rows: { type: 'string', default: '2' },
    seq: { type: 'string', default: '128' },
    'size-steps': { type: 'string', default: '3' },
    backend: { type: 'string' },
    out: { type: 'string', default: 'reports/bench.json' },
    readers: { type: 'boolean', default: false },
    torch: { type: 'boolean', default: false },
    'forward-only': { type: 'boolean', default: false },
  },
});

const steps = Number(values.steps);
const warmup = Number(values.warmup);
const forwardOnly = values['forward-only'];
const backendArg = values.backend;

/** One workload in a child process; its last stdout line is its JSON. */
function workload(job: Record<string, unknown>): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/workload.ts', JSON.stringify({ ...job, backend: backendArg })], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    return { failed: `exit ${r.status ?? r.signal}`, stderr: r.stderr.trim().split('\n').slice(-5).join('\n') };
  }
}

/** The PyTorch baseline for one GPT-2 config; null with the reason when torch is not there. */
function torchBaseline(args: Record<string, unknown>): Record<string, unknown> {
  const python = process.env.PARITY_TORCH_PYTHON ?? 'python3';
  const r = spawnSync(python, ['bench/torch_gpt2.py', JSON.stringify(args)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
  const last = r.stdout?.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    return { skipped: `${python} bench/torch_gpt2.py: ${(r.error?.message ?? r.stderr?.trim().split('\n').pop()) || `exit ${r.status}`}` };
  }
}

// Default: every shipped suite that trains from an HF config (Megatron checkpoint folders have none); --suites none: only the presets.
const names = values.suites === 'none' ? [] : values.suites?.split(',').filter(Boolean)
  ?? readdirSync('baselines').filter((n) => existsSync(join('baselines', n, 'config.json')) && existsSync(join('baselines', n, 'batches.safetensors'))).sort();
const suites: Record<string, unknown> = {};
for (const name of names) {
  process.stderr.write(`bench: suite ${name}\n`);
  suites[name] = workload({ kind: 'suite', name, steps, warmup, forwardOnly });
  if (values.torch && name === 'gpt2') {
    (suites[name] as Record<string, unknown>).pytorch = torchBaseline({ config: 'baselines/gpt2/config.json', batches: 'baselines/gpt2/batches.safetensors', steps, warmup });
  }
}

const sizes: Record<string, unknown> = {};
const rows = Number(values.rows);
const seq = Number(values.seq);
const sizeSteps = Number(values['size-steps']);
for (const preset of values.size?.split(',').filter(Boolean) ?? []) {
  process.stderr.write(`bench: size ${preset} (${rows}×${seq} tokens)\n`);
  sizes[preset] = workload({ kind: 'size', preset, rows, seq, steps: sizeSteps, warmup: 1, forwardOnly });
  if (values.torch && preset === 'gpt2') {
    (sizes[preset] as Record<string, unknown>).pytorch = torchBaseline({ preset: 'gpt2', rows, seq, steps: sizeSteps, warmup: 1 });
  }
}

const matmulPeak = workload({ kind: 'matmul', n: 1024 });

const readers: Record<string, unknown> = {};
if (values.readers) {
  for (const script of ['bench/readers-safetensors.ts', 'bench/readers-torch.ts']) {
    if (!existsSync(script)) continue;
    const out = execFileSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
    readers[script] = JSON.parse(out.trim().split('\n').pop() ?? '{}');
  }
}

const report = {
  when: new Date().toISOString(),
  backend: (matmulPeak.backend as string | undefined) ?? backendArg ?? 'auto',
  node: process.version,
  tfjs: tf.version.tfjs,
  onnxruntime: await ortVersion(),
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  threads: 'one on wasm: tfjs-backend-wasm 4.22 turns its threaded build off under Node (flag WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE; tensorflow/tfjs#3830)',
  loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  method: `suites: median wall time per optimizer step (forward + backward on the backend, clipping and AdamW on the host) over ${steps} steps after ${warmup} warm-up steps; forward: median of 10 eval-batch forwards after 5 warm-ups (to the loss, taps off); with taps: median of 5 after 3, every output and tap read to the host; onnxruntime: CPU provider, 1 intra-op thread, sequential, median of 10 runs after 5. sizes: random weights, ${rows}×${seq}-token batches, median of ${sizeSteps} steps after 1 warm-up (layers recomputed where the memory plan says so). GFLOP/s: the transformer FLOP estimate of bench/workload.ts over the median time. peakRssMB: the workload process's maximum resident set. pytorch (with --torch): bench/torch_gpt2.py, the same GPT-2 math in plain torch, 1 thread, its BLAS as torch reports it.`,
  matmulPeak,
  suites,
  sizes,
  readers,
};
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
