/**
 * UnsortedSegmentSum for the wasm backend, which does not ship it. It is the gradient of gather,
 * so every embedding lookup needs it to train. Sums run in input order, which keeps the result
 * bit-identical from run to run (the property our per-backend goldens rely on).
 */
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';

interface WasmLikeBackend {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array;
}

export function unsortedSegmentSumInto(
  x: ArrayLike<number>,
  segmentIds: ArrayLike<number>,
  numSegments: number,
  rowSize: number,
  out: Float32Array | Int32Array,
): void {
  out.fill(0);
  for (let row = 0; row < segmentIds.length; row++) {
    const seg = segmentIds[row];
    // tf.unsortedSegmentSum drops ids outside [0, numSegments), as TensorFlow does.
    if (seg < 0 || seg >= numSegments) continue;
    const src = row * rowSize;
    const dst = seg * rowSize;
    for (let j = 0; j < rowSize; j++) out[dst + j] += x[src + j];
  }
}

export function unsortedSegmentSumKernel(backendName: string): KernelConfig {
  return {
    kernelName: 'UnsortedSegmentSum',
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
      const numSegments = (attrs as { numSegments: number }).numSegments;
      const b = backend as unknown as WasmLikeBackend;
      // segmentIds has the shape of x's leading dims; the rest of x is one row.
      const idCount = segmentIds.shape.reduce((a, d) => a * d, 1);
      const xCount = x.shape.reduce((a, d) => a * d, 1);
      const rowSize = idCount === 0 ? 0 : xCount / idCount;
      const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
      const out = b.makeOutput(outShape, x.dtype);
      unsortedSegmentSumInto(b.readSync(x.dataId), b.readSync(segmentIds.dataId), numSegments, rowSize, b.typedArrayFromHeap(out));
      return out;
    },
  };
}
