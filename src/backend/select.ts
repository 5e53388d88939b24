/**
 * Picks the TensorFlow.js backend at run time. Auto order: tfjs-node-gpu when it loads and sees a
 * GPU, then WebGPU (Dawn) on a hardware adapter, then tfjs-node, then wasm, then the plain JS cpu
 * backend. A software WebGPU adapter (Mesa llvmpipe, SwiftShader) is used only when asked for: it
 * is a CPU posing as a GPU, slower than wasm. A backend asked for by name (`--backend` or
 * PARITY_BACKEND) that cannot load is an error, never a silent fallback: a report must not claim
 * one backend while the numbers came from another.
 */
import { createRequire } from 'node:module';
import { tf } from './tf.ts';
import { InputError } from '../errors.ts';
import { registerMissingKernels } from './kernels/register.ts';
import { failOnDeviceErrors, provideWebGpu, type GpuAdapter } from './webgpu.ts';

export const BACKEND_NAMES = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export const BACKEND_ENV = 'PARITY_BACKEND';

export interface SelectedBackend {
  /** Parity's name, printed in every report. */
  name: BackendName;
  /** tfjs's own registry name ("tensorflow", "webgpu", "wasm", "cpu"). */
  tfjsName: string;
  /** The GPU adapter, for webgpu: vendor, architecture, device, driver description. */
  adapter?: GpuAdapter;
  /**
   * What our goldens are keyed by: bit-exact results hold for one backend on one kind of device,
   * so a GPU backend's key names the device ("webgpu-mesa-software-llvmpipe…"); CPU backends' keys
   * are their names.
   */
  goldenKey: string;
  /** Backends tried before this one, with why they were passed over (auto mode only). */
  skipped: Array<{ name: BackendName; reason: string }>;
}

let selected: SelectedBackend | null = null;

export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

/** The backend requested by flag, else by environment, else null (auto). */
export function requestedBackend(flag?: string): BackendName | null {
  const raw = flag ?? process.env[BACKEND_ENV];
  if (raw === undefined || raw === '' || raw === 'auto') return null;
  if (!isBackendName(raw)) {
    throw new InputError(`unknown backend "${raw}"`, { expected: `one of ${BACKEND_NAMES.join(', ')}, auto`, actual: raw });
  }
  return raw;
}

export async function selectBackend(flag?: string): Promise<SelectedBackend> {
  const wanted = requestedBackend(flag);
  if (selected && (wanted === null || wanted === selected.name)) return selected;
  if (selected) {
    throw new InputError(`backend already set to ${selected.name} in this process`, { expected: selected.name, actual: wanted ?? 'auto' });
  }
  selected = await chooseBackend(wanted, activate);
  registerMissingKernels(selected.tfjsName);
  return selected;
}

/** What activating a backend yields: its tfjs name and, for a GPU backend, the adapter. */
export interface Activated {
  tfjsName: string;
  adapter?: GpuAdapter;
}

/**
 * Activates a backend, or throws why it cannot. `auto` is true when the backend was not asked for
 * by name, so it may refuse what is only worth using on request (a software GPU adapter).
 */
export type Activator = (name: BackendName, auto: boolean) => Promise<Activated>;

/** The selection policy alone: forced means that one or an error; auto means the first that works. */
export async function chooseBackend(wanted: BackendName | null, activator: Activator): Promise<SelectedBackend> {
  const order: readonly BackendName[] = wanted ? [wanted] : BACKEND_NAMES;
  const skipped: SelectedBackend['skipped'] = [];
  for (const name of order) {
    try {
      const { tfjsName, adapter } = await activator(name, wanted === null);
      return { name, tfjsName, ...(adapter ? { adapter } : {}), goldenKey: goldenKeyOf(name, adapter), skipped };
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      if (wanted) throw new InputError(`backend "${name}" was requested but cannot be used: ${reason}`, { cause: error });
      skipped.push({ name, reason });
    }
  }
  throw new InputError(`no TensorFlow.js backend could be loaded: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

/** The backend selected in this process; throws if selectBackend has not run. */
export function currentBackend(): SelectedBackend {
  if (!selected) throw new Error('selectBackend() must run before any computation');
  return selected;
}

const requireHere = createRequire(import.meta.url);

/**
 * The golden key: the backend name, plus the adapter for a GPU backend (lower case, [a-z0-9-],
 * at most 64 characters, a legal file name part everywhere).
 */
export function goldenKeyOf(name: BackendName, adapter?: GpuAdapter): string {
  if (!adapter) return name;
  const slug = [name, adapter.vendor, adapter.architecture, adapter.device]
    .filter((p) => p !== '')
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, 64).replace(/-+$/, '');
}

async function activate(name: BackendName, auto: boolean): Promise<Activated> {
  switch (name) {
    case 'tensorflow-gpu': {
      requireHere('@tensorflow/tfjs-node-gpu');
      await setAndCheck('tensorflow');
      if (!usesGpu()) throw new Error('tfjs-node-gpu loaded but sees no GPU');
      return { tfjsName: 'tensorflow' };
    }
    case 'webgpu': {
      const adapter = await provideWebGpu();
      if (auto && adapter.software) {
        throw new Error(`the only WebGPU adapter is a software one (${adapter.description || adapter.device}); it is used only with --backend webgpu`);
      }
      await setAndCheck('webgpu');
      failOnDeviceErrors((tf.backend() as unknown as { device: Parameters<typeof failOnDeviceErrors>[0] }).device);
      return { tfjsName: 'webgpu', adapter };
    }
    case 'tensorflow': {
      requireHere('@tensorflow/tfjs-node');
      await setAndCheck('tensorflow');
      return { tfjsName: 'tensorflow' };
    }
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      await setAndCheck('wasm');
      return { tfjsName: 'wasm' };
    }
    case 'cpu': {
      await setAndCheck('cpu');
      return { tfjsName: 'cpu' };
    }
  }
}

async function setAndCheck(tfjsName: string): Promise<void> {
  const ok = await tf.setBackend(tfjsName);
  await tf.ready();
  if (!ok || tf.getBackend() !== tfjsName) throw new Error(`tf.setBackend("${tfjsName}") failed`);
}

function usesGpu(): boolean {
  const backend = tf.backend() as unknown as { isUsingGpuDevice?: boolean; binding?: { isUsingGpuDevice?: () => boolean } };
  if (typeof backend.isUsingGpuDevice === 'boolean') return backend.isUsingGpuDevice;
  return backend.binding?.isUsingGpuDevice?.() ?? false;
}
