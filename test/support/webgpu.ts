/**
 * The webgpu backend for tests. Without a Vulkan (or Metal/D3D12) adapter the tests fail with
 * what to install — they do not skip: CI installs Mesa's software driver (.ci/run), so a GPU path
 * that stopped running is a failure, never a silently skipped test.
 */
import { selectBackend, type SelectedBackend } from '../../src/backend/select.ts';

export async function useWebGpu(): Promise<SelectedBackend> {
  try {
    return await selectBackend('webgpu');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`the webgpu tests need a WebGPU adapter (.ci/run installs Mesa's software Vulkan driver): ${reason}`, { cause: error });
  }
}
