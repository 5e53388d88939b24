/**
 * tfjs-backend-wasm 4.22 runs BatchMatMul through XNNPACK only when neither operand is
 * transposed; with a transpose flag it falls back to a naive loop that is 20–300x slower here.
 * Every backward pass asks for transposed products (dA = dY·Bᵀ, dB = Aᵀ·dY), so this wrapper
 * materialises the transpose with the backend's own Transpose kernel and calls the fast path.
 * Each output element is still one float32 dot product of the same operands.
 *
 * XNNPACK also keeps a packed copy of every right-hand operand it has seen, for as long as that
 * tensor lives: for a model's weights, a second copy of the whole model in the wasm heap. A large
 * operand (≥ PACKED_CACHE_LIMIT bytes) is therefore passed as a fresh copy that dies with the call,
 * taking its packed copy with it; repacking costs about one pass over the weight, small beside the
 * product at the sizes where it applies, and small weights keep the cache.
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { tf } from '../tf.ts';

interface WasmBackendInternals {
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

export const PACKED_CACHE_LIMIT = 1 << 20;

/** A copy of `x` under a new data id, in the wasm heap. */
function freshCopy(x: TensorInfo, backend: WasmBackendInternals): TensorInfo {
  const out = backend.makeOutput([...x.shape], x.dtype);
  const bytes = x.shape.reduce((n, d) => n * d, 1) * 4;
  const from = backend.dataIdMap.get(x.dataId).memoryOffset;
  const to = backend.dataIdMap.get(out.dataId).memoryOffset;
  backend.wasm.HEAPU8.copyWithin(to, from, from + bytes);
  return out;
}

export function wrapWasmBatchMatMul(): boolean {
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!original || !transpose || (original as { parityWrapped?: boolean }).parityWrapped) return false;
  const inner = original.kernelFunc;
  const swapLastTwo: KernelFunc = ({ inputs, backend }) => {
    const x = (inputs as { x: TensorInfo }).x;
    const rank = x.shape.length;
    const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
    return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } as unknown as NamedAttrMap }) as TensorInfo;
  };
  const wrapped: KernelConfig & { parityWrapped: boolean } = {
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    disposeFunc: original.disposeFunc,
    parityWrapped: true,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const internals = backend as unknown as WasmBackendInternals;
      const large = b.dtype === 'float32' && b.shape.reduce((n, d) => n * d, 1) * 4 >= PACKED_CACHE_LIMIT;
      if (!transposeA && !transposeB && !large) return inner({ inputs, backend, attrs });
      const temporaries: TensorInfo[] = [];
      const aa = transposeA ? swapLastTwo({ inputs: { x: a }, backend, attrs: {} }) as TensorInfo : a;
      if (transposeA) temporaries.push(aa);
      // A transposed operand is already fresh; an untransposed large one is copied (see above).
      const bb = transposeB ? swapLastTwo({ inputs: { x: b }, backend, attrs: {} }) as TensorInfo : large ? freshCopy(b, internals) : b;
      if (bb !== b) temporaries.push(bb);
      try {
        return inner({ inputs: { a: aa, b: bb }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as unknown as NamedAttrMap });
      } finally {
        for (const t of temporaries) internals.disposeData(t.dataId);
      }
    },
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel(wrapped);
  return true;
}
