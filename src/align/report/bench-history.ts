/**
 * `reports/bench-history.jsonl`: one line per night, backend and benchmark workload (a shipped
 * suite, or a real-size preset from `npm run bench -- --size`), from the JSON `npm run bench`
 * writes; and the dashboard's plots of it: ms per training step and peak RSS across nights.
 * A rerun of the same night replaces that night's lines.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from '../../errors.ts';
import type { PlotSpec, PlotTrace } from './page.ts';
import { writeFileReplacing } from './write.ts';

export const BENCH_HISTORY_FILE = 'bench-history.jsonl';

export interface BenchEntry {
  date: string;
  backend: string;
  /** "suite bert", "size gpt2". */
  workload: string;
  msPerStep: number | null;
  forwardMs: number | null;
  trainGflops: number | null;
  peakRssMB: number | null;
}

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

/** The lines one `npm run bench` JSON gives for night `date`. */
export function benchEntries(report: unknown, date: string, file: string): BenchEntry[] {
  if (typeof report !== 'object' || report === null) throw new InputError('not a bench report (a JSON object)', { file });
  const r = report as { backend?: unknown; suites?: unknown; sizes?: unknown };
  if (typeof r.backend !== 'string') throw new InputError('bench report has no backend', { file, tensor: 'backend' });
  const out: BenchEntry[] = [];
  for (const [kind, group] of [['suite', r.suites], ['size', r.sizes]] as const) {
    if (group === undefined) continue;
    if (typeof group !== 'object' || group === null) throw new InputError(`bench report's ${kind === 'suite' ? 'suites' : 'sizes'} is not an object`, { file });
    for (const [name, raw] of Object.entries(group)) {
      const w = (raw ?? {}) as Record<string, unknown>;
      out.push({ date, backend: r.backend, workload: `${kind} ${name}`, msPerStep: num(w.msPerStepMedian), forwardMs: num(w.forwardMsMedian), trainGflops: num(w.trainGflops), peakRssMB: num(w.peakRssMB) });
    }
  }
  return out;
}

export function readBenchHistory(file: string): BenchEntry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((line, i) => {
    try {
      return JSON.parse(line) as BenchEntry;
    } catch (cause) {
      throw new InputError(`line ${i + 1} is not JSON`, { file, cause });
    }
  });
}

/** Adds `entries`, replacing any line of the same night, backend and workload. */
export async function upsertBenchHistory(file: string, entries: readonly BenchEntry[]): Promise<BenchEntry[]> {
  const key = (e: BenchEntry) => `${e.date}|${e.backend}|${e.workload}`;
  const incoming = new Set(entries.map(key));
  const merged = [...readBenchHistory(file).filter((e) => !incoming.has(key(e))), ...entries].sort((a, b) => key(a).localeCompare(key(b)));
  mkdirSync(dirname(file), { recursive: true });
  await writeFileReplacing(file, merged.map((e) => JSON.stringify(e)).join('\n') + (merged.length ? '\n' : ''));
  return merged;
}

const BENCH_PLOTS = [
  { key: 'msPerStep', id: 'plot-bench-ms-per-step', title: 'npm run bench: ms per training step (log)', format: '.3~s' },
  { key: 'peakRssMB', id: 'plot-bench-peak-rss', title: 'npm run bench: peak RSS, MB', format: '.0f' },
] as const;

export function benchPlots(history: readonly BenchEntry[]): PlotSpec[] {
  const series = new Map<string, BenchEntry[]>();
  for (const e of [...history].sort((a, b) => a.date.localeCompare(b.date))) {
    const name = `${e.workload} · ${e.backend}`;
    series.set(name, [...(series.get(name) ?? []), e]);
  }
  const plots: PlotSpec[] = [];
  for (const p of BENCH_PLOTS) {
    const traces: PlotTrace[] = [...series]
      .filter(([, es]) => es.some((e) => e[p.key] !== null))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, es]) => ({
        type: 'scatter',
        mode: 'lines+markers',
        name,
        x: es.map((e) => e.date),
        y: es.map((e) => e[p.key]),
        line: { dash: name.startsWith('size') ? 'solid' : 'dot' },
        hovertemplate: `%{fullData.name}<br>%{x}: %{y:${p.format}}<extra></extra>`,
      }));
    if (traces.length === 0) continue;
    plots.push({
      id: p.id,
      traces,
      layout: {
        title: { text: p.title, x: 0, xanchor: 'left' },
        height: 420,
        margin: { l: 70, r: 20, t: 50, b: 120 },
        xaxis: { type: 'category', categoryorder: 'category ascending' },
        yaxis: p.key === 'msPerStep' ? { type: 'log' } : {},
        legend: { orientation: 'h', x: 0, y: -0.25 },
      },
      caption: 'Dotted: the shipped suites; solid: real-size presets (random weights). Same machine class each night; read trends, not single points.',
    });
  }
  return plots;
}
