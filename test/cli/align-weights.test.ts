/**
 * `npm run align -- <dir> --weights <checkpoint>`: the forward check with weights from any
 * supported checkpoint — a PyTorch .bin, Megatron directories merged across TP/PP ranks — and a
 * clear refusal when the checkpoint does not fit the suite's model.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, TSX, tempDir } from '../support/suite-copy.ts';

const work = tempDir('parity-weights-');
afterAll(() => work.cleanup());

async function align(suite: string, weights: string) {
  const json = join(work.dir, `${suite}-${weights.replace(/\W/g, '_')}.json`);
  const r = await execa(TSX, ['src/cli/align.ts', suite, '--only', 'forward', '--weights', weights, '--no-report', '--reports', join(work.dir, 'r'), '--json', json], { cwd: REPO, reject: false });
  return { ...r, verdict: r.exitCode === 2 ? null : JSON.parse(readFileSync(json, 'utf8')) };
}

describe('align --weights', () => {
  it.each([
    ['gpt2', 'baselines/gpt2/pytorch_model.bin'],
    ['megatron-gpt2', 'baselines/megatron-gpt2/tp2-v3'],
    ['megatron-gpt2', 'baselines/megatron-gpt2/pp2-v3'],
    ['megatron-gpt2', 'baselines/megatron-gpt2/tp1-v0'],
    ['megatron-bert', 'baselines/megatron-bert/tp2-v3'],
  ])('%s with %s reproduces the reference forward (exit 0)', async (suite, weights) => {
    const r = await align(suite, weights);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.verdict.forward.tensors.filter((t: { name: string }) => t.name.startsWith('initial/')).length).toBeGreaterThan(0);
    expect(r.verdict.forward.maxAbsDiff).toBeLessThanOrEqual(1e-5);
  });

  it('a Megatron checkpoint with a padded vocabulary does not fit the unpadded gpt2 suite: exit 2 naming the tensor and shapes', async () => {
    const r = await align('gpt2', 'baselines/megatron-gpt2/tp1-v3');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/word_embeddings\.weight.*expected \[1000,64\], got \[1024,64\]/);
  });
});
