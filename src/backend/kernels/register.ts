/**
 * Fills the gaps between what training needs and what a backend ships. Each kernel registered
 * here has a gradient test in test/backend/kernels.
 */
import { tf } from '../tf.ts';
import { unsortedSegmentSumKernel } from './unsorted-segment-sum.ts';
import { shareWasmIdentity } from './wasm-identity.ts';
import { wrapWasmBatchMatMul } from './wasm-matmul.ts';
import { webgpuSoftmaxKernel } from './webgpu-softmax.ts';

const REQUIRED_FOR_TRAINING = ['UnsortedSegmentSum'] as const;

const webgpuSoftmax = webgpuSoftmaxKernel();

export function registerMissingKernels(tfjsBackend: string): string[] {
  const registered: string[] = [];
  if (tfjsBackend === 'wasm' && wrapWasmBatchMatMul()) registered.push('BatchMatMul (transpose via fast path)');
  if (tfjsBackend === 'wasm' && shareWasmIdentity()) registered.push('Identity (shares storage)');
  if (tfjsBackend === 'webgpu' && tf.getKernel(tf.Softmax, 'webgpu')?.kernelFunc !== webgpuSoftmax.kernelFunc) {
    tf.unregisterKernel(tf.Softmax, 'webgpu');
    tf.registerKernel(webgpuSoftmax);
    registered.push('Softmax (row maximum from −∞)');
  }
  for (const kernelName of REQUIRED_FOR_TRAINING) {
    if (tf.getKernel(kernelName, tfjsBackend) !== undefined) continue;
    if (tfjsBackend !== 'wasm') continue; // only the wasm backend's layout is known here
    tf.registerKernel(unsortedSegmentSumKernel(tfjsBackend));
    registered.push(kernelName);
  }
  return registered;
}

/** Kernels training needs that the backend still lacks; empty when training can run. */
export function missingKernels(tfjsBackend: string): string[] {
  return REQUIRED_FOR_TRAINING.filter((k) => tf.getKernel(k, tfjsBackend) === undefined);
}
