/**
 * Named tensor transforms used by the weight maps. Each has an inverse so export (our names back
 * to the foreign layout) is derived from the same rule rather than written twice.
 */
import { InputError } from '../errors.ts';
import { numel, shapeString } from './checkpoint.ts';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export interface TransformContext {
  /** Attention heads (needed to split fused, head-interleaved projections). */
  heads?: number;
}

export type TransformName = 'identity' | 'transpose' | 'outputsLast' | 'splitColumns3' | 'splitHeadsInterleaved3' | 'splitHeadsInterleaved2';

export interface Transform {
  /** How many target tensors one source tensor becomes. */
  arity: number;
  describe: string;
  forward(src: HostTensor, ctx: TransformContext, where: string): HostTensor[];
  inverse(parts: HostTensor[], ctx: TransformContext, where: string): HostTensor;
}

export function transpose2d(t: HostTensor): HostTensor {
  if (t.shape.length !== 2) throw new Error(`transpose needs a matrix, got ${shapeString(t.shape)}`);
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c];
  return { shape: [cols, rows], data: out };
}

/**
 * A convolution kernel [O, C, kh, kw] (torch) -> [C, kh, kw, O] (ours: outputs last, as a Linear's
 * [in, out]); the inverse moves the last axis back to the front.
 */
function outputsLast(t: HostTensor): HostTensor {
  if (t.shape.length < 2) throw new Error(`outputsLast needs at least 2 dimensions, got ${shapeString(t.shape)}`);
  const [out, ...rest] = t.shape;
  const m = transpose2d({ shape: [out, t.data.length / out], data: t.data });
  return { shape: [...rest, out], data: m.data };
}

function outputsFirst(t: HostTensor): HostTensor {
  const out = t.shape[t.shape.length - 1];
  const rest = t.shape.slice(0, -1);
  const m = transpose2d({ shape: [t.data.length / out, out], data: t.data });
  return { shape: [out, ...rest], data: m.data };
}

/** [rows, k·w] -> k x [rows, w] by column blocks (GPT-2 Conv1D c_attn: [h, 3h] -> q|k|v). */
function splitColumns(t: HostTensor, k: number, where: string): HostTensor[] {
  const rows = t.shape.length === 1 ? 1 : t.shape[0];
  const cols = t.shape[t.shape.length - 1];
  if (cols % k !== 0) throw new InputError(`last dimension not divisible by ${k}`, { tensor: where, actual: shapeString(t.shape) });
  const w = cols / k;
  return Array.from({ length: k }, (_, part) => {
    const out = new Float32Array(rows * w);
    for (let r = 0; r < rows; r++) out.set(t.data.subarray(r * cols + part * w, r * cols + (part + 1) * w), r * w);
    return { shape: t.shape.length === 1 ? [w] : [rows, w], data: out };
  });
}

function joinColumns(parts: HostTensor[]): HostTensor {
  const rows = parts[0].shape.length === 1 ? 1 : parts[0].shape[0];
  const w = parts[0].shape[parts[0].shape.length - 1];
  const cols = w * parts.length;
  const out = new Float32Array(rows * cols);
  parts.forEach((p, part) => {
    for (let r = 0; r < rows; r++) out.set(p.data.subarray(r * w, (r + 1) * w), r * cols + part * w);
  });
  return { shape: parts[0].shape.length === 1 ? [cols] : [rows, cols], data: out };
}

/**
 * Megatron's fused projection, rows ordered [np, k, hn] (heads interleaved, checkpoint_version ≥ 2;
 * readers canonicalise older versions to it) -> k torch-layout blocks [np·hn, in] in q|k|v order.
 * Biases ([np·k·hn]) split the same way.
 */
function splitInterleavedRows(t: HostTensor, k: number, ctx: TransformContext, where: string): HostTensor[] {
  const heads = requireHeads(ctx, where);
  const rows = t.shape[0];
  const inner = t.shape.length === 2 ? t.shape[1] : 1;
  if (rows % (k * heads) !== 0) throw new InputError(`rows not divisible by ${k}·heads (${k * heads})`, { tensor: where, actual: shapeString(t.shape) });
  const hn = rows / (k * heads);
  const parts = Array.from({ length: k }, () => new Float32Array(heads * hn * inner));
  for (let j = 0; j < heads; j++) {
    for (let w = 0; w < k; w++) {
      for (let d = 0; d < hn; d++) {
        const src = (j * k * hn + w * hn + d) * inner; // stored row of (which w, head j, d)
        const dst = (j * hn + d) * inner; // row in the unfused [np·hn, in] block
        parts[w].set(t.data.subarray(src, src + inner), dst);
      }
    }
  }
  return parts.map((data) => ({ shape: t.shape.length === 2 ? [heads * hn, inner] : [heads * hn], data }));
}

function joinInterleavedRows(parts: HostTensor[], ctx: TransformContext, where: string): HostTensor {
  const k = parts.length;
  const heads = requireHeads(ctx, where);
  const inner = parts[0].shape.length === 2 ? parts[0].shape[1] : 1;
  const hn = parts[0].shape[0] / heads;
  const out = new Float32Array(k * heads * hn * inner);
  for (let j = 0; j < heads; j++) {
    for (let w = 0; w < k; w++) {
      for (let d = 0; d < hn; d++) {
        const dst = (j * k * hn + w * hn + d) * inner;
        const src = (j * hn + d) * inner;
        out.set(parts[w].data.subarray(src, src + inner), dst);
      }
    }
  }
  return { shape: parts[0].shape.length === 2 ? [k * heads * hn, inner] : [k * heads * hn], data: out };
}

function requireHeads(ctx: TransformContext, where: string): number {
  if (!ctx.heads) throw new InputError('splitting a fused projection needs the head count', { tensor: where });
  return ctx.heads;
}

/** Rank-2 results of a fused split are torch [out, in]; ours are [in, out]. Vectors stay. */
const toOurs = (t: HostTensor): HostTensor => (t.shape.length === 2 ? transpose2d(t) : t);

export const TRANSFORMS: Record<TransformName, Transform> = {
  identity: {
    arity: 1,
    describe: 'copy',
    forward: (t) => [t],
    inverse: (parts) => parts[0],
  },
  transpose: {
    arity: 1,
    describe: '[out,in] -> [in,out]',
    forward: (t) => [t.shape.length === 2 ? transpose2d(t) : t],
    inverse: (parts) => (parts[0].shape.length === 2 ? transpose2d(parts[0]) : parts[0]),
  },
  outputsLast: {
    arity: 1,
    describe: '[out,in,kh,kw] -> [in,kh,kw,out]',
    forward: (t) => [outputsLast(t)],
    inverse: (parts) => outputsFirst(parts[0]),
  },
  splitColumns3: {
    arity: 3,
    describe: 'split columns q|k|v',
    forward: (t, _ctx, where) => splitColumns(t, 3, where),
    inverse: (parts) => joinColumns(parts),
  },
  splitHeadsInterleaved3: {
    arity: 3,
    describe: 'split [np,3,hn] rows into q,k,v; transpose',
    forward: (t, ctx, where) => splitInterleavedRows(t, 3, ctx, where).map(toOurs),
    inverse: (parts, ctx, where) => joinInterleavedRows(parts.map(toOurs), ctx, where),
  },
  splitHeadsInterleaved2: {
    arity: 2,
    describe: 'split [np,2,hn] rows into k,v; transpose',
    forward: (t, ctx, where) => splitInterleavedRows(t, 2, ctx, where).map(toOurs),
    inverse: (parts, ctx, where) => joinInterleavedRows(parts.map(toOurs), ctx, where),
  },
};

export function checkNumel(t: HostTensor, where: string, file?: string): void {
  if (t.data.length !== numel(t.shape)) {
    throw new InputError('tensor data does not match its shape', { file, tensor: where, expected: String(numel(t.shape)), actual: String(t.data.length) });
  }
}
