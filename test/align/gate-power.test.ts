/**
 * The curve gate can fail: each shipped suite's training check, with the tolerances it ships
 * (a per-step envelope from the reference's own float64 replay), must call MISALIGNED on a replay
 * carrying a realistic porting bug, over the fewest steps that show it — and still pass the honest
 * replay over the same steps. The bugs go into Parity's replay, never into the reference.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/align/baseline/manifest.ts';
import { join } from 'node:path';
import { modelFromConfig, modelFromConfigJson, weightMapFor } from '../../src/families/registry.ts';
import { readSafetensors } from '../../src/weightmap/readers/safetensors.ts';
import { writeSafetensors } from '../../src/weightmap/readers/safetensors-writer.ts';
import { loadSuite } from '../../src/align/suite.ts';
import { checkTraining } from '../../src/align/train-check.ts';
import { parseHyperparams } from '../../src/align/train/hyperparams.ts';
import { readJsonObject } from '../../src/json-file.ts';
import { calibrate, writeCalibration } from '../../src/align/baseline/calibrate.ts';
import { BASELINES, useBackend } from '../support/backend.ts';
import { copySuite, tempDir } from '../support/suite-copy.ts';
import { frozenBug, OPTIMIZER_BUGS, type PortingBug } from '../support/porting-bugs.ts';

beforeAll(useBackend);

interface SuiteCase {
  suite: string;
  /** Enough steps for the slowest bug to cross the envelope (measured), with room. */
  steps: number;
  bugs: PortingBug[];
}

const CASES: SuiteCase[] = [
  { suite: 'bert', steps: 60, bugs: [...OPTIMIZER_BUGS, frozenBug('position-embeddings-not-trained', 'BERT position embeddings left out of training', ['embeddings.position'])] },
  { suite: 'gpt2', steps: 40, bugs: [...OPTIMIZER_BUGS] },
  { suite: 't5', steps: 60, bugs: [...OPTIMIZER_BUGS, frozenBug('relative-position-bias-not-trained', 'T5 relative-position bias left out of training', ['encoder.relative_bias', 'decoder.relative_bias'])] },
  { suite: 't5v11', steps: 60, bugs: [...OPTIMIZER_BUGS, frozenBug('relative-position-bias-not-trained', 'T5 relative-position bias left out of training', ['encoder.relative_bias', 'decoder.relative_bias'])] },
  { suite: 'llama', steps: 40, bugs: [...OPTIMIZER_BUGS, frozenBug('lm-head-not-trained', 'LLaMA\'s untied head left out of training (treated as tied to a frozen table)', ['lm_head'])] },
  { suite: 'roberta', steps: 40, bugs: [...OPTIMIZER_BUGS, frozenBug('token-type-embedding-not-trained', 'RoBERTa\'s single token-type row left out of training', ['embeddings.token_type'])] },
  { suite: 'vit', steps: 60, bugs: [...OPTIMIZER_BUGS, frozenBug('cls-token-not-trained', 'ViT\'s [CLS] token registered as a buffer, not a parameter', ['embeddings.cls'])] },
];

describe.each(CASES)('$suite: the curve gate', ({ suite, steps, bugs }) => {
  const dir = `${BASELINES}${suite}`;
  const model = modelFromConfig(`${dir}/config.json`);
  const hyper = parseHyperparams(readJsonObject(`${dir}/hyperparams.json`), `${dir}/hyperparams.json`, model.specs, weightMapFor(model));
  const check = (replay?: PortingBug['replay']) =>
    checkTraining(model, loadSuite(dir), loadManifest(dir), { steps, goldenKey: 'none', ...(replay ? { replay: replay(hyper) } : {}) });

  it(`passes the honest replay over ${steps} steps, every metric held to the float64 envelope`, async () => {
    const { verdict } = await check();
    expect(verdict.metrics.filter((m) => !m.pass).map((m) => m.metric)).toEqual([]);
    const loss = verdict.metrics.find((m) => m.metric === 'loss')!;
    expect(loss.envelope?.source).toBe('train_curve.float64.json (loss)');
    // Before the reference itself turns imprecise the gate is far below the old uniform 1e-3.
    expect(Math.max(...loss.envelope!.tolerance)).toBeLessThanOrEqual(1e-4);
  });

  it.each(bugs.map((b) => [b.name, b] as const))(`calls %s MISALIGNED within ${steps} steps, on the loss`, async (_, bug) => {
    const { verdict } = await check(bug.replay);
    expect(verdict.pass).toBe(false);
    const loss = verdict.metrics.find((m) => m.metric === 'loss')!;
    expect(loss.pass, `${bug.what}: loss max|diff| ${loss.maxAbsDiff}`).toBe(false);
    expect(loss.firstFailingStep).toBeLessThan(steps);
  });
});

describe('a folder without a float64 replay, after calibrate', () => {
  // gpt2's files without train_curve.float64.json: the envelope comes from our own one-ulp spread.
  const STEPS = 40;
  const FILES = ['config.json', 'model.safetensors', 'batches.safetensors', 'hyperparams.json', 'train_curve.json'];
  const copy = copySuite('gpt2', FILES);
  const dir = copy.dir;
  beforeAll(async () => {
    writeCalibration(await calibrate({ suiteDir: dir, backend: 'wasm', steps: STEPS, runs: 2 }));
  });
  afterAll(() => copy.cleanup());
  const model = modelFromConfig(`${BASELINES}gpt2/config.json`);
  const hyper = parseHyperparams(readJsonObject(`${BASELINES}gpt2/hyperparams.json`), 'hyperparams.json', model.specs, weightMapFor(model));
  const check = (replay?: PortingBug['replay']) =>
    checkTraining(model, loadSuite(dir), loadManifest(dir), { steps: STEPS, goldenKey: 'wasm', ...(replay ? { replay: replay(hyper) } : {}) });

  it('passes the honest replay with the envelope from noise.wasm.json', async () => {
    const { verdict } = await check();
    const loss = verdict.metrics.find((m) => m.metric === 'loss')!;
    expect(loss.envelope?.source).toBe('noise.wasm.json (loss)');
    expect(verdict.pass).toBe(true);
  });

  it.each(OPTIMIZER_BUGS.filter((b) => ['adam-eps-1e-7', 'decay-on-bias-and-norm'].includes(b.name)).map((b) => [b.name, b] as const))('calls %s MISALIGNED on the loss', async (_, bug) => {
    const { verdict } = await check(bug.replay);
    expect(verdict.metrics.find((m) => m.metric === 'loss')!.pass).toBe(false);
  });
});

describe('gpt2: the LM head untied from the word embeddings', () => {
  // A port that builds the head as its own matrix, initialised as a copy of the embeddings, then
  // trains the two apart: HF ties them, so each update moves both.
  const STEPS = 40;
  const dir = `${BASELINES}gpt2`;
  const work = tempDir('parity-untied-');
  afterAll(() => work.cleanup());

  it(`is MISALIGNED on the loss within ${STEPS} steps`, async () => {
    const weights = join(work.dir, 'untied.safetensors');
    const file = readSafetensors(`${dir}/model.safetensors`);
    const tensors = [...file.tensors.values()].map((t) => ({ name: t.name, dtype: 'F32' as const, shape: [...t.shape], data: t.toFloat32() }));
    const wte = tensors.find((t) => /(^|\.)wte\.weight$/.test(t.name))!;
    writeSafetensors(weights, [...tensors, { ...wte, name: 'lm_head.weight', data: Float32Array.from(wte.data) }]);
    const model = modelFromConfigJson({ ...readJsonObject(`${dir}/config.json`), tie_word_embeddings: false }, `${dir}/config.json`);
    const { verdict } = await checkTraining(model, loadSuite(dir), loadManifest(dir), { steps: STEPS, goldenKey: 'none', weights });
    const loss = verdict.metrics.find((m) => m.metric === 'loss')!;
    expect(loss.pass, `loss max|diff| ${loss.maxAbsDiff}`).toBe(false);
    expect(verdict.pass).toBe(false);
  });
});
