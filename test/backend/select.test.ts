/** Backend choice: auto order, forced backends, the environment override. */
import { describe, expect, it } from 'vitest';
import { BACKEND_ENV, chooseBackend, goldenKeyOf, requestedBackend, type BackendName } from '../../src/backend/select.ts';
import { describeAdapter } from '../../src/backend/webgpu.ts';
import { InputError } from '../../src/errors.ts';

const only = (...working: BackendName[]) => async (name: BackendName) => {
  if (!working.includes(name)) throw new Error(`${name} is not installed`);
  return { tfjsName: name === 'tensorflow-gpu' ? 'tensorflow' : name };
};

describe('chooseBackend', () => {
  it('auto picks tfjs-node-gpu first, then webgpu, then tfjs-node, then wasm, then cpu', async () => {
    expect((await chooseBackend(null, only('tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'))).name).toBe('tensorflow-gpu');
    expect((await chooseBackend(null, only('webgpu', 'tensorflow', 'wasm', 'cpu'))).name).toBe('webgpu');
    expect((await chooseBackend(null, only('tensorflow', 'wasm', 'cpu'))).name).toBe('tensorflow');
    const wasm = await chooseBackend(null, only('wasm', 'cpu'));
    expect(wasm.name).toBe('wasm');
    expect(wasm.goldenKey).toBe('wasm');
    expect(wasm.skipped.map((s) => s.name)).toEqual(['tensorflow-gpu', 'webgpu', 'tensorflow']);
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
    expect(() => requestedBackend('metal')).toThrow(InputError);
    expect(requestedBackend('webgpu')).toBe('webgpu');
  });
});

describe('GPU adapters', () => {
  // Dawn's own reports: Mesa's software Vulkan on this kind of machine, and a discrete NVIDIA card.
  const llvmpipe = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1', isFallbackAdapter: true };
  const nvidia = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA: 550.54.15 550.54.15.0', isFallbackAdapter: false };

  it('tells a CPU posing as a GPU from a GPU, by Dawn\'s flag or by name', () => {
    expect(describeAdapter(llvmpipe).software).toBe(true);
    expect(describeAdapter({ ...llvmpipe, isFallbackAdapter: false, architecture: '' }).software).toBe(true);
    expect(describeAdapter({ vendor: 'google', device: 'SwiftShader Device (Subzero)', description: 'SwiftShader driver' }).software).toBe(true);
    expect(describeAdapter(nvidia).software).toBe(false);
  });

  it('keys goldens by backend and device class, as a legal file name part', () => {
    expect(goldenKeyOf('webgpu', describeAdapter(llvmpipe))).toBe('webgpu-mesa-software-llvmpipe-llvm-15-0-6-256-bits');
    expect(goldenKeyOf('webgpu', describeAdapter(nvidia))).toBe('webgpu-nvidia-hopper');
    expect(goldenKeyOf('wasm')).toBe('wasm');
    const long = goldenKeyOf('webgpu', describeAdapter({ vendor: 'x'.repeat(40), architecture: 'y'.repeat(40) }));
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
  });
});
