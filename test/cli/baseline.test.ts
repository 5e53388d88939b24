/** The baseline CLI's own contract: usage, exit codes, and flag errors that name the flag. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, copySuite, SHIPPED, tempDir } from '../align/baseline/helpers.ts';

describe('npm run baseline', () => {
  it('--help prints the usage and exits 0', async () => {
    const r = await cli(['--help'], tempDir());
    expect(r.exitCode).toBe(0);
    for (const command of ['bless <suite> --from', 'import <file> --format', 'export <suite> --format megatron-golden']) expect(r.stdout).toContain(command);
  });

  it.each([
    ['no command', [], /a command is required/],
    ['an unknown command', ['rebless'], /unknown command "rebless"/],
    ['an unknown flag', ['bless', 'gpt2', '--from', 'r', '--reason', 'x', '--froce'], /--froce/],
    ['two suites', ['bless', 'gpt2', 'bert', '--from', 'r', '--reason', 'x'], /exactly one suite/],
    ['a bad --form', ['export', 'gpt2', '--format', 'megatron-golden', '--form', 'table', '--out', 'x'], /--form must be one of dict, list/],
    ['an unknown export format', ['export', 'gpt2', '--format', 'csv', '--out', 'x'], /--format must be one of megatron-golden/],
    ['--interval 0', ['export', 'gpt2', '--format', 'megatron-golden', '--interval', '0', '--out', 'x'], /--interval must be a whole number ≥ 1/],
    ['a bad --decimals', ['export', 'gpt2', '--format', 'megatron-golden', '--decimals', 'many', '--out', 'x'], /--decimals/],
    ['--step-base 2', ['import', 'f.csv', '--format', 'csv', '--step-base', '2', '--into', 'gpt2'], /--step-base must be 0 or 1/],
    ['a missing --into', ['import', 'f.csv', '--format', 'csv'], /--into is required/],
  ])('exits 2 on %s, with a message naming it', async (_, args, message) => {
    const root = tempDir();
    copySuite(root, 'gpt2', ['config.json']);
    const r = await cli(args, root);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: /);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('--baselines points at another baselines folder', async () => {
    const root = tempDir();
    copySuite(root, 'megatron-bert', ['config.json']);
    const r = await cli(
      ['import', join(SHIPPED, 'megatron-bert/golden_values_current.json'), '--format', 'megatron-golden', '--into', 'megatron-bert', '--baselines', join(root, 'baselines')],
      tempDir(),
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/imported lm loss → lm_loss: 201 points, steps 0\.\.999, interval 1/);
  });
});
