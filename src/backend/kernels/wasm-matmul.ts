/**
 * tfjs-backend-wasm 4.22 runs BatchMatMul through XNNPACK only when neither operand is
 * transposed; with a transpose flag it falls back to a naive loop that is 20–300x slower here.
 * Every backward pass asks for transposed products (dA = dY·Bᵀ, dB = Aᵀ·dY), so this wrapper
 * materialises the transpose with the backend's own Transpose kernel and calls the fast path.
 * Each output element is still one float32 dot product of the same operands.
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { tf } from '../tf.ts';

interface DisposingBackend {
  disposeData(dataId: object): boolean;
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
      if (!transposeA && !transposeB) return inner({ inputs, backend, attrs });
      const temporaries: TensorInfo[] = [];
      const aa = transposeA ? swapLastTwo({ inputs: { x: a }, backend, attrs: {} }) as TensorInfo : a;
      if (transposeA) temporaries.push(aa);
      const bb = transposeB ? swapLastTwo({ inputs: { x: b }, backend, attrs: {} }) as TensorInfo : b;
      if (transposeB) temporaries.push(bb);
      try {
        return inner({ inputs: { a: aa, b: bb }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as unknown as NamedAttrMap });
      } finally {
        for (const t of temporaries) (backend as unknown as DisposingBackend).disposeData(t.dataId);
      }
    },
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel(wrapped);
  return true;
}
