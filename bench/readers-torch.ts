/**
 * Throughput and memory of the torch `.bin` reader on a ~1 GB file.
 *
 *   npx tsx bench/readers-torch.ts [--gib 1]
 *
 * The parent writes a torch-1.13-layout zip (64-byte aligned float32 records) into os.tmpdir()
 * with the test writer, then a fresh child process opens it and materialises every tensor, so
 * the child's peak RSS is the reader's alone (plus Node's own ~50 MB). Prints one JSON line:
 * {fileBytes, seconds, GBps, peakRssBytes, rssOverFile, ...} of the median of five runs. The file
 * was just written, so it is read from the page cache: this measures the reader, not the disk.
 * Targets: ≥ 1 GB/s and peak RSS ≤ 1.1 × file size (one Buffer, zero-copy float32 views).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTorchCheckpoint } from '../src/weightmap/readers/torch.ts';
import { OrderedDict, Storage, Tensor, writeTorchZip } from '../test/weightmap/readers/torch-writer.ts';

const self = fileURLToPath(import.meta.url);
/** Fresh child processes per measurement; the median is reported, every run listed. */
const RUNS = 5;

function child(path: string): void {
  const baselineRss = process.memoryUsage().rss;
  const t0 = performance.now();
  const ckpt = readTorchCheckpoint(path);
  let elements = 0;
  let checksum = 0;
  for (const t of ckpt.tensors.values()) {
    const v = t.toFloat32();
    elements += v.length;
    checksum += v[0] + v[v.length - 1]; // touch both ends so nothing stays lazy
  }
  const seconds = (performance.now() - t0) / 1000;
  const fileBytes = statSync(path).size;
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(
    `${JSON.stringify({
      fileBytes,
      seconds: Number(seconds.toFixed(3)),
      GBps: Number((fileBytes / seconds / 1e9).toFixed(2)),
      peakRssBytes,
      rssOverFile: Number((peakRssBytes / fileBytes).toFixed(3)),
      baselineRssBytes: baselineRss,
      tensors: ckpt.tensors.size,
      elements,
      checksum,
    })}\n`,
  );
}

function parent(gib: number): void {
  const path = join(tmpdir(), `parity-bench-${process.pid}.bin`);
  const rows = 4096, cols = 4096; // 64 MiB per matrix
  const matrices = Math.max(1, Math.round((gib * 2 ** 30) / (rows * cols * 4)));
  const entries: [string, Tensor][] = [];
  for (let i = 0; i < matrices; i++) {
    const fill = () => {
      const a = new Float32Array(rows * cols);
      for (let k = 0; k < a.length; k++) a[k] = ((k * 2654435761 + i) % 1000) * 1e-3;
      return new Uint8Array(a.buffer);
    };
    entries.push([`layers.${i}.weight`, new Tensor(new Storage('Float', fill, rows * cols * 4), 0, [rows, cols], [cols, 1])]);
    const bias = new Float32Array(cols).fill(i);
    entries.push([`layers.${i}.bias`, new Tensor(new Storage('Float', new Uint8Array(bias.buffer)), 0, [cols], [1])]);
  }
  try {
    writeTorchZip(path, new OrderedDict(entries), { top: 'bench' });
    // Finish writeback first: dirty pages being flushed during a run made timings swing 3×.
    const fd = openSync(path, 'r');
    fsyncSync(fd);
    closeSync(fd);
    const runs: Record<string, number>[] = [];
    for (let i = 0; i < RUNS; i++) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', path], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (run.status !== 0) throw new Error(`child failed (${run.status}): ${run.stderr}`);
      runs.push(JSON.parse(run.stdout) as Record<string, number>);
    }
    const median = [...runs].sort((a, b) => a.seconds - b.seconds)[RUNS >> 1];
    process.stdout.write(`${JSON.stringify({ ...median, runs: runs.map((r) => ({ seconds: r.seconds, GBps: r.GBps, rssOverFile: r.rssOverFile })) })}\n`);
  } finally {
    rmSync(path, { force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') child(argv[1]);
else parent(argv[0] === '--gib' ? Number(argv[1]) : 1);
