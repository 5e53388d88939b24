/**
 * tfjs-backend-wasm 4.22's Identity copies its input. The engine clones (Identity) every tensor a
 * gradient saves for the backward pass, weights included, so a training step on wasm held a second
 * copy of every weight and activation it saved: for a 110M-parameter model, 1.7 GB more. This
 * Identity shares the input's storage and counts one more owner, as the cpu backend's does and as
 * wasm's own Reshape does; tfjs tensors are immutable (a variable's assign swaps storage instead of
 * writing into it), so sharing is safe.
 */
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { tf } from '../tf.ts';

interface RefCounting {
  incRef(dataId: object): void;
}

export function shareWasmIdentity(): boolean {
  const original = tf.getKernel('Identity', 'wasm');
  if (!original || (original as { parityWrapped?: boolean }).parityWrapped) return false;
  const shared: KernelConfig & { parityWrapped: boolean } = {
    kernelName: 'Identity',
    backendName: 'wasm',
    parityWrapped: true,
    kernelFunc: ({ inputs, backend }) => {
      const x = (inputs as { x: TensorInfo }).x;
      if (x.dtype === 'string') return original.kernelFunc({ inputs, backend, attrs: {} });
      (backend as unknown as RefCounting).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    },
  };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel(shared);
  return true;
}
