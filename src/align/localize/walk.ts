/**
 * The divergence walk: our taps in model order, each against the reference value it corresponds
 * to, and the first one over tolerance named as run / layer / sub-block. Float32 error grows
 * slowly along a correct network and jumps at the sub-block that computes something else, so the
 * first checkpoint over the forward tolerance is where to look; the one before it (the last that
 * passed) bounds the search from the other side when the reference is coarser than our taps.
 */
import type { CheckpointComparison, Divergence } from '../verdict.ts';

/** "initial/encoder/layer.0/attn.scores" -> run "initial", layer "encoder/layer.0", sub-block "attn.scores". */
export function splitCheckpointName(name: string): { run: string; layer: string | null; subBlock: string } {
  const slash = name.indexOf('/');
  const run = slash < 0 ? '' : name.slice(0, slash);
  const tapName = slash < 0 ? name : name.slice(slash + 1);
  const last = tapName.lastIndexOf('/');
  return { run, layer: last < 0 ? null : tapName.slice(0, last), subBlock: last < 0 ? tapName : tapName.slice(last + 1) };
}

/**
 * The first failing checkpoint among those in `checkpoints` (model order, runs in order), or null.
 * Value-matched checkpoints take part, and the divergence carries their match so a guess is visible.
 */
export function findDivergence(checkpoints: readonly CheckpointComparison[]): Divergence | null {
  let lastPassing: string | null = null;
  for (const c of checkpoints) {
    if (c.pass) {
      lastPassing = c.name;
      continue;
    }
    const parts = splitCheckpointName(c.name);
    // A passing checkpoint of another run says nothing about this one.
    const sameRun = lastPassing !== null && splitCheckpointName(lastPassing).run === parts.run ? lastPassing : null;
    return { name: c.name, ...parts, maxAbsDiff: c.maxAbsDiff, cosine: c.cosine, reference: c.reference, match: c.match, lastPassing: sameRun };
  }
  return null;
}
