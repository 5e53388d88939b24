/** Tests run on the backend the environment selects (PARITY_BACKEND), wasm on a plain CI box. */
import { selectBackend, type SelectedBackend } from '../../src/backend/select.ts';

export function useBackend(): Promise<SelectedBackend> {
  return selectBackend(process.env.PARITY_BACKEND ?? 'wasm');
}

export const BASELINES = new URL('../../baselines/', import.meta.url).pathname;
