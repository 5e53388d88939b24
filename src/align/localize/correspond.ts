/**
 * The correspondence between our taps and the values of one or more ONNX graphs (T5: encoder,
 * then decoder). First by module scope (onnx-scopes.ts), where the exporter kept it; a tap the
 * table does not place, or whose place is absent from the graph, is matched by value: among the
 * float values of the same shape the graph computes, the one closest to ours. A value match is a
 * guess and is reported as one, with how many candidates there were and how far the runner-up was,
 * so a wrong pairing is visible rather than silently trusted.
 */
import type { OnnxGraph } from '../../weightmap/readers/onnx-graph.ts';
import type { PositionMask } from '../compare-tensor.ts';
import type { HostValue } from '../forward-run.ts';
import { compareValues } from './compare-checkpoint.ts';
import { locatorFor, type Locator, type ScopeTable } from './onnx-scopes.ts';

export type MatchKind = 'output' | 'scope' | 'value';

export interface GraphValue {
  /** Index of the graph in the pipeline. */
  graph: number;
  value: string;
}

export interface Correspondence extends GraphValue {
  by: MatchKind;
  /** How the match was made: the scope or node, or for a value match the candidates and runner-up. */
  note: string;
}

/** Places a tap by the table; null = the table says there is no counterpart; undefined = not placed. */
export function placeByScope(graphs: readonly OnnxGraph[], table: ScopeTable | undefined, tapName: string): Correspondence | null | undefined {
  const locator = locatorFor(table, tapName);
  if (locator === null) return null;
  if (locator === undefined) return undefined;
  for (let g = 0; g < graphs.length; g++) {
    const found = resolve(graphs[g], locator);
    if (found) return { graph: g, ...found };
  }
  return undefined;
}

function resolve(graph: OnnxGraph, locator: Locator): { value: string; by: MatchKind; note: string } | undefined {
  if ('output' in locator) {
    const produced = graph.nodes.some((n) => n.outputs.includes(locator.output));
    return produced ? { value: locator.output, by: 'output', note: `value ${locator.output}` } : undefined;
  }
  if ('node' in locator) {
    const node = graph.nodes.find((n) => n.name === locator.node);
    if (!node) return undefined;
    const value = locator.input === undefined ? node.outputs[0] : node.inputs[locator.input];
    return value ? { value, by: 'scope', note: locator.input === undefined ? `node ${node.name}` : `input ${locator.input} of node ${node.name}` } : undefined;
  }
  const prefix = `${locator.scope}/`;
  const inScope = graph.nodes.filter((n) => n.name.startsWith(prefix) && n.opType !== 'Constant');
  const last = inScope[inScope.length - 1];
  return last?.outputs[0] ? { value: last.outputs[0], by: 'scope', note: `module ${locator.scope} (its last node, ${last.opType})` } : undefined;
}

export interface ValueMatch extends Correspondence {
  maxAbsDiff: number;
}

/**
 * The candidate closest to `ours` (smallest max|diff| over unmasked elements) among `candidates`
 * of the same shape (ours may broadcast over it); undefined when no candidate has that shape.
 */
export function matchByValue(ours: HostValue, candidates: ReadonlyArray<GraphValue & { tensor: HostValue }>, masks: readonly PositionMask[]): ValueMatch | undefined {
  const scored = candidates
    .map((c) => ({ c, cmp: compareValues(ours, c.tensor, 0, 0, masks) }))
    .filter((s) => s.cmp.shapeMismatch === undefined && s.cmp.compared > 0)
    .sort((a, b) => a.cmp.maxAbsDiff - b.cmp.maxAbsDiff);
  if (scored.length === 0) return undefined;
  const [best, ...rest] = scored;
  // Copies of one value (Reshape, Cast, Identity) tie at the same distance, and so do values that
  // only differ through parameters which happen to be neutral (a zero bias, a unit norm weight):
  // the earliest in graph order is kept, the ties are counted, the runner-up is the closest other.
  const ties = rest.filter((s) => s.cmp.maxAbsDiff === best.cmp.maxAbsDiff).length;
  const distinct = rest.find((s) => s.cmp.maxAbsDiff > best.cmp.maxAbsDiff);
  const note = `by value: closest of ${scored.length} same-shape candidates (max|diff| ${best.cmp.maxAbsDiff.toExponential(2)}${ties ? `, ${ties} more at the same distance` : ''}; next different ${distinct ? distinct.cmp.maxAbsDiff.toExponential(2) : 'none'})`;
  return { graph: best.c.graph, value: best.c.value, by: 'value', note, maxAbsDiff: best.cmp.maxAbsDiff };
}
