/**
 * Backend choice as a user meets it: auto selection never settles on a software GPU adapter, the
 * verdict says what it passed over and why, and `--backend webgpu` without a Vulkan driver is
 * unusable input (exit 2) that says what to install.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, tempDir, TSX } from '../support/suite-copy.ts';

const work = tempDir('parity-backend-cli-');
afterAll(() => work.cleanup());

const align = (args: string[], env: Record<string, string | undefined> = {}) =>
  execa(TSX, ['src/cli/align.ts', ...args, '--reports', join(work.dir, 'reports'), '--no-report'], {
    cwd: REPO,
    reject: false,
    env: { GITHUB_STEP_SUMMARY: '', PARITY_BACKEND: '', ...env },
  });

describe('backend choice', () => {
  it('auto uses a WebGPU adapter only if it is a real GPU, and records what it skipped', async () => {
    const json = join(work.dir, 'auto.json');
    const r = await align(['bert', '--only', 'forward', '--json', json]);
    expect(r.exitCode, r.stderr).toBe(0);
    const v = JSON.parse(readFileSync(json, 'utf8'));
    if (v.backend === 'webgpu') {
      expect(v.environment.adapter.software).toBe(false);
    } else {
      const skipped = v.environment.skippedBackends as Array<{ name: string; reason: string }>;
      const webgpu = skipped.find((s) => s.name === 'webgpu');
      // Either Dawn found only a software adapter, or none at all.
      expect(webgpu?.reason).toMatch(/software|no GPU adapter|cannot load/);
    }
  });

  it('--backend webgpu without a Vulkan driver exits 2 and names what to install', async () => {
    // The Vulkan loader reads its driver list from these; pointing them nowhere hides every driver.
    const r = await align(['bert', '--only', 'forward', '--backend', 'webgpu'], { VK_DRIVER_FILES: '/nonexistent/icd.json', VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/backend "webgpu" was requested but cannot be used/);
    expect(r.stderr).toMatch(/mesa-vulkan-drivers/);
  });

  it('--backend webgpu names the adapter in the verdict and the console', async () => {
    const json = join(work.dir, 'webgpu.json');
    const r = await align(['gpt2', '--only', 'forward', '--backend', 'webgpu', '--json', json]);
    expect(r.exitCode, r.stderr).toBe(0);
    const v = JSON.parse(readFileSync(json, 'utf8'));
    expect(v.backend).toBe('webgpu');
    expect(v.environment.adapter).toMatchObject({ vendor: expect.any(String), description: expect.any(String), software: expect.any(Boolean) });
    expect(r.stdout).toContain(v.environment.adapter.description);
  });
});
