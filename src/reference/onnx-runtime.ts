/**
 * An ONNX model run by onnxruntime-node as a live forward reference: the graph outputs, plus any
 * intermediate value requested by name (added to graph.output in memory; the file is never
 * written). onnxruntime-node is loaded on first use, so runs that never touch ONNX never load it.
 *
 * Numerics, set here rather than inherited from ORT's defaults:
 *  - CPU execution provider, one intra-op and one inter-op thread, sequential execution: ORT's
 *    threaded reductions split sums differently with the thread count, one thread is the
 *    reproducible order (and what the fixtures' ORT-vs-PyTorch figures were measured with);
 *  - graph optimizations "disabled" by default: ORT's fusions (LayerNorm, GELU, attention) keep a
 *    value only if it is a graph output, and change the rounding of what they fuse, so the
 *    reference would depend on which intermediates were asked for. Unfused, every node runs as
 *    exported, op for op like the PyTorch trace (the fixture READMEs record both levels: ≤ 1.2e-6
 *    from PyTorch either way).
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { InputError } from '../errors.ts';
import { ONNX_FLOAT, ONNX_INT32, ONNX_INT64, readOnnxGraph, withExtraOutputs, type OnnxGraph } from '../weightmap/readers/onnx-graph.ts';

export const GRAPH_OPTIMIZATIONS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimization = (typeof GRAPH_OPTIMIZATIONS)[number];

export interface OrtSettings {
  /** Intra-op threads (1: the reproducible reduction order). */
  threads: number;
  optimization: GraphOptimization;
}

export const DEFAULT_ORT_SETTINGS: OrtSettings = { threads: 1, optimization: 'disabled' };

/** A host tensor: float32 values in C order. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** What a graph input is fed from: integer ids and masks (int32 on the host) or floats. */
export interface FeedTensor {
  shape: number[];
  data: Int32Array | Float32Array;
}

type Ort = typeof import('onnxruntime-node');
let ortModule: Promise<Ort> | undefined;

function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node').catch((cause: unknown) => {
    ortModule = undefined;
    throw new InputError('onnxruntime-node cannot load on this machine', { expected: 'the CPU binary shipped in the npm package (npm ci)', actual: String((cause as Error)?.message ?? cause), cause });
  });
  return ortModule;
}

/** The onnxruntime-node version that runs references (loads it). */
export async function ortVersion(): Promise<string> {
  const ort = await loadOrt();
  return ort.env.versions.node ?? ort.env.versions.common;
}

export class OnnxModel {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();

  private constructor(
    readonly graph: OnnxGraph,
    readonly settings: OrtSettings,
  ) {}

  /** Reads and checks the file (an InputError naming it if it is missing, truncated or hostile). */
  static open(path: string, settings: OrtSettings = DEFAULT_ORT_SETTINGS): OnnxModel {
    return new OnnxModel(readOnnxGraph(path), settings);
  }

  get file(): string {
    return this.graph.file;
  }

  /** Every value some node produces, in graph order (candidates for an intermediate output). */
  nodeValues(): string[] {
    return this.graph.nodes.flatMap((n) => n.outputs).filter((v) => v !== '');
  }

  /**
   * Runs the model. `feeds` holds every graph input by name; returns the graph outputs and the
   * `extra` values that are float tensors (others, such as int64 shape arithmetic, are left out).
   */
  async run(feeds: Readonly<Record<string, FeedTensor>>, extra: readonly string[] = []): Promise<Map<string, HostTensor>> {
    const ort = await loadOrt();
    const declared = new Set(this.graph.outputs.map((o) => o.name));
    const wanted = [...new Set(extra)].filter((n) => !declared.has(n));
    const known = new Set(this.nodeValues());
    const unknown = wanted.filter((n) => !known.has(n));
    if (unknown.length > 0) throw new InputError('no node of the graph produces this value', { file: this.file, tensor: unknown[0], expected: 'a node output name', actual: 'absent' });
    const session = await this.session(wanted);
    const inputs: Record<string, OrtTensor> = {};
    for (const input of this.graph.inputs) {
      const feed = feeds[input.name];
      if (!feed) throw new InputError('no value to feed this graph input', { file: this.file, tensor: input.name, expected: `one of: ${Object.keys(feeds).join(', ')}`, actual: 'absent' });
      inputs[input.name] = toOrt(ort, feed, input.elemType, this.file, input.name);
    }
    let results: InferenceSession.ReturnType;
    try {
      results = await session.run(inputs);
    } catch (cause) {
      throw new InputError('onnxruntime failed to run the model', { file: this.file, expected: 'inputs of the shapes and types the graph declares', actual: String((cause as Error)?.message ?? cause).slice(0, 400), cause });
    }
    const out = new Map<string, HostTensor>();
    for (const [name, t] of Object.entries(results)) {
      if (t.type === 'float32') out.set(name, { shape: t.dims.map(Number), data: t.data as Float32Array });
    }
    return out;
  }

  /** Drops every session (native memory). */
  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) await (await s.catch(() => null))?.release();
  }

  /** One session per set of extra outputs, built from the file's bytes plus those outputs. */
  private session(extra: readonly string[]): Promise<InferenceSession> {
    const key = extra.join('\n');
    let session = this.sessions.get(key);
    if (!session) {
      session = loadOrt().then(async (ort) => {
        try {
          return await ort.InferenceSession.create(withExtraOutputs(this.graph.bytes, extra), {
            executionProviders: ['cpu'],
            intraOpNumThreads: this.settings.threads,
            interOpNumThreads: 1,
            executionMode: 'sequential',
            graphOptimizationLevel: this.settings.optimization,
          });
        } catch (cause) {
          throw new InputError('onnxruntime cannot load the model', { file: this.file, expected: 'a model onnxruntime accepts', actual: String((cause as Error)?.message ?? cause).slice(0, 400), cause });
        }
      });
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }
}

function toOrt(ort: Ort, feed: FeedTensor, elemType: number | null, file: string, name: string): OrtTensor {
  const { data, shape } = feed;
  // An untyped input gets what PyTorch's exporter declares for ids and masks: int64.
  const type = elemType ?? (data instanceof Float32Array ? ONNX_FLOAT : ONNX_INT64);
  if (type === ONNX_FLOAT) return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), shape);
  if (data instanceof Float32Array) throw new InputError('graph input wants integers, the feed holds floats', { file, tensor: name, expected: `data type ${type}`, actual: 'float32' });
  if (type === ONNX_INT64) return new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), shape);
  if (type === ONNX_INT32) return new ort.Tensor('int32', data, shape);
  throw new InputError('unsupported graph input type', { file, tensor: name, expected: 'float, int32 or int64', actual: `TensorProto data type ${type}` });
}
