/**
 * WebGPU for Node: Dawn (the `webgpu` npm package, Vulkan / Metal / D3D12 underneath) provides
 * `navigator.gpu`, and `@tensorflow/tfjs-backend-webgpu` runs TensorFlow.js on it. One GPU path
 * for NVIDIA, AMD, Intel and Apple GPUs, installed by `npm ci` alone (both packages are optional
 * dependencies). The adapter is the one Dawn prefers for high performance, which is also the one
 * tfjs-backend-webgpu asks for, so the adapter described here is the one that computes.
 */
/** What a verdict records about the GPU, as Dawn reports it. */
export interface GpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  /** Dawn's description: on Vulkan the driver's name and version ("llvmpipe: Mesa 25.0.7 …"). */
  description: string;
  /** A CPU posing as a GPU (Mesa llvmpipe/lavapipe, SwiftShader): real, but slow. */
  software: boolean;
}

/** Adapter names of CPU implementations of Vulkan/WebGPU. */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe|warp/i;

/** What to install when Dawn finds no adapter: the message a user on Linux without a Vulkan driver reads. */
export const NO_ADAPTER_ADVICE =
  'Dawn found no GPU adapter: no Vulkan driver is installed (Linux), or no GPU is visible. Install your GPU vendor\'s Vulkan driver ' +
  '(NVIDIA: the driver package with its Vulkan ICD; AMD/Intel: mesa-vulkan-drivers), or, to run on the CPU through Mesa\'s software ' +
  'Vulkan driver, `apt-get install -t bookworm-backports mesa-vulkan-drivers` (Debian 12; Mesa 23+ elsewhere — older Mesa lacks what Dawn requires). ' +
  '`vulkaninfo --summary` (package vulkan-tools) lists the devices Vulkan sees.';

interface DawnAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

interface DawnAdapter {
  info?: DawnAdapterInfo;
}

interface DawnGpu {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<DawnAdapter | null>;
}

interface DawnModule {
  create(options: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

let provided: GpuAdapter | null = null;

export function describeAdapter(info: DawnAdapterInfo): GpuAdapter {
  const text = `${info.device ?? ''} ${info.description ?? ''}`;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: info.isFallbackAdapter === true || info.architecture === 'software' || SOFTWARE_ADAPTER.test(text),
  };
}

/**
 * Makes `navigator.gpu` a Dawn instance and registers tfjs's webgpu backend on it. Throws (with
 * what to install) when the packages are missing or Dawn finds no adapter. Idempotent.
 */
export async function provideWebGpu(): Promise<GpuAdapter> {
  if (provided) return provided;
  const dawn = await loadDawn();
  // WebGPU's classes (GPUBufferUsage, GPUShaderStage, …) are globals in a browser; tfjs expects them.
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER_ADVICE);
  const described = describeAdapter(adapter.info ?? {});
  installNavigatorGpu(gpu);
  try {
    // Registers the 'webgpu' tfjs backend, which reads navigator.gpu on import.
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (cause) {
    throw new Error('@tensorflow/tfjs-backend-webgpu is not installed (an optional dependency): run `npm ci` or `npm install @tensorflow/tfjs-backend-webgpu@4.22.0`', { cause });
  }
  provided = described;
  return described;
}

/** One line naming a GPU adapter: "mesa llvmpipe-… (software), llvmpipe: Mesa 25.0.7 …". */
export function describeAdapterLine(a: GpuAdapter): string {
  const name = [a.vendor, a.architecture, a.device].filter((p) => p !== '').join(' ');
  return `${name}${a.software ? ' (software)' : ''}${a.description ? `, ${a.description}` : ''}`;
}

interface GpuDeviceLike {
  addEventListener(type: 'uncapturederror', listener: (event: { error: { message: string } }) => void): void;
  lost: Promise<{ reason: string; message: string }>;
}

/**
 * A WebGPU validation error (a shader that does not compile, a bad binding) does not throw: the
 * command is dropped and its output reads as zeros. Numbers computed after one are garbage, so
 * an error on the device ends the process as an internal fault, naming the error, instead of
 * letting a verdict be written from them.
 */
export function failOnDeviceErrors(device: GpuDeviceLike): void {
  const fail = (what: string) => {
    process.stderr.write(`internal error: WebGPU ${what}; results computed after it cannot be trusted\n`);
    process.exit(70); // EX_SOFTWARE, as for any internal fault: never a verdict
  };
  device.addEventListener('uncapturederror', (event) => fail(`device error: ${event.error.message}`));
  void device.lost.then((info) => {
    // 'destroyed' is our own dispose at exit, not a fault.
    if (info.reason !== 'destroyed') fail(`device lost (${info.reason}): ${info.message}`);
  });
}

/** The adapter provideWebGpu found, or null before it ran. */
export function providedAdapter(): GpuAdapter | null {
  return provided;
}

/**
 * Node 21+ has its own `navigator` (without `gpu`), a getter on globalThis that plain assignment
 * cannot replace; Node 20 has none. Either way `navigator.gpu` ends up as Dawn's.
 */
function installNavigatorGpu(gpu: DawnGpu): void {
  const g = globalThis as { navigator?: object };
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

async function loadDawn(): Promise<DawnModule> {
  try {
    // The name is held in a variable so that a missing optional package is a run-time error here, not a type error.
    const name = 'webgpu';
    return (await import(name)) as DawnModule;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new Error(`the webgpu package (Dawn for Node, an optional dependency) cannot load: ${reason}. Run \`npm ci\`, or \`npm install webgpu@0.6.2\``, { cause });
  }
}
