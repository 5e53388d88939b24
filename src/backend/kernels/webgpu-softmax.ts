/**
 * Softmax for tfjs-backend-webgpu 4.22 with the row maximum started at FLOAT32_MIN. The package starts it
 * at −3.402823e38, which is not the most negative float32 (−3.4028235e38, FLOAT32_MIN): a row
 * whose largest score is FLOAT32_MIN — every key masked, the way HF masks a left-padded query —
 * then gets max = −3.402823e38, exp(score − max) = 0 everywhere and 0/0 = NaN, where PyTorch
 * (and every other backend) gives the uniform distribution over the masked keys.
 * The program is the package's own otherwise (one workgroup per row, shared-memory reductions).
 */
import { tf } from '../tf.ts';

interface WebGpuProgram {
  variableNames: string[];
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  shaderKey: string;
  getUserCode(): string;
}

interface WebGpuBackendLike {
  runWebGPUProgram(program: WebGpuProgram, inputs: tf.TensorInfo[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): void;
}

function softmaxProgram(rows: number, cols: number): WebGpuProgram {
  const block = cols >= 4096 ? 256 : 64;
  return {
    variableNames: ['logits'],
    outputShape: [rows, cols],
    dispatchLayout: { x: [0, 1] },
    dispatch: [rows, 1, 1],
    workgroupSize: [block, 1, 1],
    shaderKey: 'parity_softmax',
    getUserCode: () => `
    var<workgroup> buf : array<f32, ${block}>;
    var<workgroup> rowMaxShared : f32;
    var<workgroup> rowSumShared : f32;
    const blockSize = ${block};
    fn main(index : i32) {
      let row = index / blockSize;
      let tid = i32(localId.x);
      let cols = uniforms.outShape[1];

      // FLOAT32_MIN exactly (WGSL rejects an infinite constant), so that a row of FLOAT32_MIN
      // scores has FLOAT32_MIN as its maximum.
      var threadMax = -0x1.fffffep+127f;
      for (var col = tid; col < cols; col += blockSize) {
        threadMax = max(threadMax, getLogits(row, col));
      }
      buf[tid] = threadMax;
      workgroupBarrier();

      for (var currSize = blockSize >> 1; currSize > 0; currSize = currSize >> 1) {
        if (tid < currSize) {
          buf[tid] = max(buf[tid], buf[tid + currSize]);
        }
        workgroupBarrier();
      }
      if (tid == 0) {
        rowMaxShared = buf[0];
      }
      workgroupBarrier();

      var threadSum = 0.0;
      for (var col = tid; col < cols; col += blockSize) {
        threadSum += exp(getLogits(row, col) - rowMaxShared);
      }
      buf[tid] = threadSum;
      workgroupBarrier();

      for (var currSize = blockSize >> 1; currSize > 0; currSize = currSize >> 1) {
        if (tid < currSize) {
          buf[tid] = buf[tid] + buf[tid + currSize];
        }
        workgroupBarrier();
      }
      if (tid == 0) {
        rowSumShared = buf[0];
      }
      workgroupBarrier();

      for (var col = tid; col < cols; col += blockSize) {
        setOutputAtCoords(row, col, exp(getLogits(row, col) - rowMaxShared) / rowSumShared);
      }
    }
    `,
  };
}

export function webgpuSoftmaxKernel(): tf.KernelConfig {
  return {
    kernelName: tf.Softmax,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const logits = (inputs as { logits: tf.TensorInfo }).logits;
      const dim = (attrs as unknown as { dim: number }).dim;
      const reshape = tf.getKernel(tf.Reshape, 'webgpu')!.kernelFunc;
      const cols = logits.shape[dim];
      const rows = tf.util.sizeFromShape(logits.shape) / cols;
      const flat = reshape({ inputs: { x: logits }, backend, attrs: { shape: [rows, cols] } }) as tf.TensorInfo; // [..., C] -> [R, C]
      const gpu = backend as unknown as WebGpuBackendLike;
      const out = gpu.runWebGPUProgram(softmaxProgram(rows, cols), [flat], logits.dtype);
      const shaped = reshape({ inputs: { x: out }, backend, attrs: { shape: logits.shape } }) as tf.TensorInfo; // [R, C] -> [..., C]
      gpu.disposeData(flat.dataId);
      gpu.disposeData(out.dataId);
      return shaped;
    },
  };
}
