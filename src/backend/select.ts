/**
 * Picks the TensorFlow.js backend at run time. Auto order: tfjs-node-gpu when it loads and sees a
 * GPU, then tfjs-node, then wasm, then the plain JS cpu backend. A backend asked for by name
 * (`--backend` or PARITY_BACKEND) that cannot load is an error, never a silent fallback: a report
 * must not claim one backend while the numbers came from another.
 */
import { createRequire } from 'node:module';
import { tf } from './tf.ts';
import { InputError } from '../errors.ts';
import { registerMissingKernels } from './kernels/register.ts';

export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export const BACKEND_ENV = 'PARITY_BACKEND';

export interface SelectedBackend {
  /** Parity's name, printed in every report. */
  name: BackendName;
  /** tfjs's own registry name ("tensorflow", "wasm", "cpu"). */
  tfjsName: string;
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

/** Activates a backend and returns its tfjs name, or throws why it cannot. */
export type Activator = (name: BackendName) => Promise<string>;

/** The selection policy alone: forced means that one or an error; auto means the first that works. */
export async function chooseBackend(wanted: BackendName | null, activator: Activator): Promise<SelectedBackend> {
  const order: readonly BackendName[] = wanted ? [wanted] : BACKEND_NAMES;
  const skipped: SelectedBackend['skipped'] = [];
  for (const name of order) {
    try {
      return { name, tfjsName: await activator(name), skipped };
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

async function activate(name: BackendName): Promise<string> {
  switch (name) {
    case 'tensorflow-gpu': {
      requireHere('@tensorflow/tfjs-node-gpu');
      await setAndCheck('tensorflow');
      if (!usesGpu()) throw new Error('tfjs-node-gpu loaded but sees no GPU');
      return 'tensorflow';
    }
    case 'tensorflow': {
      requireHere('@tensorflow/tfjs-node');
      await setAndCheck('tensorflow');
      return 'tensorflow';
    }
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      await setAndCheck('wasm');
      return 'wasm';
    }
    case 'cpu': {
      await setAndCheck('cpu');
      return 'cpu';
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
