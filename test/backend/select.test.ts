/** Backend choice: auto order, forced backends, the environment override. */
import { describe, expect, it } from 'vitest';
import { BACKEND_ENV, chooseBackend, requestedBackend, type BackendName } from '../../src/backend/select.ts';
import { InputError } from '../../src/errors.ts';

const only = (...working: BackendName[]) => async (name: BackendName) => {
  if (!working.includes(name)) throw new Error(`${name} is not installed`);
  return name === 'tensorflow-gpu' ? 'tensorflow' : name;
};

describe('chooseBackend', () => {
  it('auto picks tfjs-node-gpu first, then tfjs-node, then wasm, then cpu', async () => {
    expect((await chooseBackend(null, only('tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'))).name).toBe('tensorflow-gpu');
    expect((await chooseBackend(null, only('tensorflow', 'wasm', 'cpu'))).name).toBe('tensorflow');
    const wasm = await chooseBackend(null, only('wasm', 'cpu'));
    expect(wasm.name).toBe('wasm');
    expect(wasm.skipped.map((s) => s.name)).toEqual(['tensorflow-gpu', 'tensorflow']);
    expect(wasm.skipped[0].reason).toContain('not installed');
    expect((await chooseBackend(null, only('cpu'))).name).toBe('cpu');
  });

  it('a forced backend that cannot load is an error, not a fallback', async () => {
    const attempt = chooseBackend('tensorflow-gpu', only('wasm', 'cpu'));
    await expect(attempt).rejects.toBeInstanceOf(InputError);
    await expect(chooseBackend('tensorflow-gpu', only('wasm', 'cpu'))).rejects.toThrow(/tensorflow-gpu.*requested.*not installed/);
  });

  it('nothing loadable is an error naming every reason', async () => {
    await expect(chooseBackend(null, only())).rejects.toThrow(/wasm: wasm is not installed/);
  });
});

describe('requestedBackend', () => {
  it('reads the flag, then the environment; "auto" and empty mean auto', () => {
    const saved = process.env[BACKEND_ENV];
    try {
      process.env[BACKEND_ENV] = 'cpu';
      expect(requestedBackend()).toBe('cpu');
      expect(requestedBackend('wasm')).toBe('wasm');
      process.env[BACKEND_ENV] = 'auto';
      expect(requestedBackend()).toBeNull();
      delete process.env[BACKEND_ENV];
      expect(requestedBackend()).toBeNull();
    } finally {
      if (saved === undefined) delete process.env[BACKEND_ENV];
      else process.env[BACKEND_ENV] = saved;
    }
  });

  it('an unknown name is unusable input', () => {
    expect(() => requestedBackend('webgpu')).toThrow(InputError);
  });
});
