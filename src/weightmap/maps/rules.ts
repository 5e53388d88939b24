/** Shorthands that expand to plain MapRule rows, so each map file reads as a table. */
import type { MapRule } from '../map.ts';

/** A torch nn.Linear: weight [out,in] transposed to ours, bias copied. */
export function torchLinear(from: string, to: string, bias = true): MapRule[] {
  const rules: MapRule[] = [{ from: `${from}.weight`, to: `${to}.weight`, transform: 'transpose' }];
  if (bias) rules.push({ from: `${from}.bias`, to: `${to}.bias` });
  return rules;
}

/** A GPT-2 Conv1D: weight already [in,out]. */
export function conv1d(from: string, to: string): MapRule[] {
  return [
    { from: `${from}.weight`, to: `${to}.weight` },
    { from: `${from}.bias`, to: `${to}.bias` },
  ];
}

/** A LayerNorm's weight and bias, under the given weight/bias names. */
export function norm(from: string, to: string, names: { weight: string; bias?: string } = { weight: 'weight', bias: 'bias' }): MapRule[] {
  const rules: MapRule[] = [{ from: `${from}.${names.weight}`, to: `${to}.weight` }];
  if (names.bias) rules.push({ from: `${from}.${names.bias}`, to: `${to}.bias` });
  return rules;
}

export function drop(from: string, note: string, tiedTo?: string): MapRule {
  return tiedTo ? { from, to: null, note, tiedTo } : { from, to: null, note };
}
