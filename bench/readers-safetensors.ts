/**
 * safetensors reader throughput and memory: writes a ~1 GB F32 file (256 tensors × 1M floats) in
 * the temp folder, then a child process opens it and materialises every tensor with toFloat32().
 * The child exists so that peak RSS is the reader's own, not the writer's.
 * Targets: ≥ 2 GB/s, and peak RSS well under the file size: each tensor is read when asked and
 * dropped after use, so the reader holds one tensor (4 MB here) at a time, not the file.
 *
 *   npx tsx bench/readers-safetensors.ts
 *
 * Prints JSON {fileBytes, seconds, GBps, peakRssBytes, rssOverFile, ...}. The file is freshly
 * written, so it is read from the page cache: this measures the reader, not the disk.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../src/weightmap/readers/safetensors.ts';
import { writeSafetensors } from '../src/weightmap/readers/safetensors-writer.ts';

const TENSORS = 256;
const FLOATS_PER_TENSOR = 1 << 20;

function child(path: string): void {
  const start = process.hrtime.bigint();
  const ckpt = readSafetensors(path);
  const opened = process.hrtime.bigint();
  let sum = 0;
  for (const t of ckpt.tensors.values()) sum += t.toFloat32()[0];
  const end = process.hrtime.bigint();
  process.stdout.write(JSON.stringify({
    seconds: Number(end - start) / 1e9,
    // Split so a slow run can be told apart: open = header read + checks, decode = the reads and toFloat32 calls.
    openSeconds: Number(opened - start) / 1e9,
    decodeSeconds: Number(end - opened) / 1e9,
    peakRssBytes: process.resourceUsage().maxRSS * 1024, // maxRSS is in KiB
    tensors: ckpt.tensors.size,
    sum,
  }));
}

function parent(): void {
  const dir = mkdtempSync(join(tmpdir(), 'parity-bench-st-'));
  try {
    const path = join(dir, 'big.safetensors');
    // One shared array for every tensor keeps the writer's own memory at 4 MB; first elements differ.
    const data = new Float32Array(FLOATS_PER_TENSOR).map((_, i) => i * 1e-6);
    writeSafetensors(path, Array.from({ length: TENSORS }, (_, i) => ({
      name: `layer.${String(i).padStart(3, '0')}.weight`, dtype: 'F32' as const, shape: [1024, 1024], data,
    })));
    const fileBytes = statSync(path).size;
    const run = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', path], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`child failed (${run.status}): ${run.stderr}`);
    const { seconds, openSeconds, decodeSeconds, peakRssBytes, tensors, sum } = JSON.parse(run.stdout) as Record<string, number>;
    if (tensors !== TENSORS || sum !== 0) throw new Error(`child read ${tensors} tensors with first-element sum ${sum}; expected ${TENSORS} and 0`);
    const GBps = fileBytes / seconds / 1e9;
    const rssOverFile = peakRssBytes / fileBytes;
    console.log(JSON.stringify({ fileBytes, seconds, GBps, peakRssBytes, rssOverFile, openSeconds, decodeSeconds, meetsThroughput: GBps >= 2, meetsMemory: rssOverFile <= 0.5 }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') child(process.argv[3]);
else parent();
