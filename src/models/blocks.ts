/**
 * Canonical parameter names for the pieces every family shares, and the lookups that turn a
 * ParamLookup into the layer parameter objects. One naming scheme for all models:
 *   <prefix>.attn.{q,k,v,o}.{weight,bias}   <prefix>.attn_norm.{weight,bias}
 *   <prefix>.cross.{q,k,v,o}.{weight,bias}  <prefix>.cross_norm.{weight,bias}
 *   <prefix>.mlp.{fc_in,fc_gate,fc_out}.{weight,bias}   <prefix>.mlp_norm.{weight,bias}
 * Linear weights are [in, out].
 */
import type { AttentionParams } from '../layers/attention.ts';
import type { LinearParams } from '../layers/linear.ts';
import type { MlpParams } from '../layers/mlp.ts';
import type { NormKind, NormParams, TransformerLayerParams } from '../layers/transformer-layer.ts';
import type { ParamLookup, ParamSpec } from './params.ts';

export interface BlockShape {
  hidden: number;
  /** heads · head dim (T5: num_heads · d_kv; others: hidden). */
  inner: number;
  /** Key/value heads · head dim, when fewer key/value heads than query heads (grouped-query attention). */
  kvInner?: number;
  ffn: number;
  /** Width of what cross-attention keys/values are projected from. */
  crossSource?: number;
  bias: boolean;
  gated: boolean;
  norm: NormKind;
  cross: boolean;
}

export function linearSpecs(prefix: string, inDim: number, outDim: number, bias: boolean): ParamSpec[] {
  const specs: ParamSpec[] = [{ name: `${prefix}.weight`, shape: [inDim, outDim] }];
  if (bias) specs.push({ name: `${prefix}.bias`, shape: [outDim] });
  return specs;
}

export function normSpecs(prefix: string, hidden: number, kind: NormKind): ParamSpec[] {
  const specs: ParamSpec[] = [{ name: `${prefix}.weight`, shape: [hidden] }];
  if (kind === 'layer') specs.push({ name: `${prefix}.bias`, shape: [hidden] });
  return specs;
}

function attentionSpecs(prefix: string, s: BlockShape, kvSource: number): ParamSpec[] {
  return [
    ...linearSpecs(`${prefix}.q`, s.hidden, s.inner, s.bias),
    ...linearSpecs(`${prefix}.k`, kvSource, s.kvInner ?? s.inner, s.bias),
    ...linearSpecs(`${prefix}.v`, kvSource, s.kvInner ?? s.inner, s.bias),
    ...linearSpecs(`${prefix}.o`, s.inner, s.hidden, s.bias),
  ];
}

export function blockSpecs(prefix: string, s: BlockShape): ParamSpec[] {
  const specs = [...attentionSpecs(`${prefix}.attn`, s, s.hidden), ...normSpecs(`${prefix}.attn_norm`, s.hidden, s.norm)];
  if (s.cross) specs.push(...attentionSpecs(`${prefix}.cross`, s, s.crossSource ?? s.hidden), ...normSpecs(`${prefix}.cross_norm`, s.hidden, s.norm));
  if (s.gated) specs.push(...linearSpecs(`${prefix}.mlp.fc_gate`, s.hidden, s.ffn, s.bias));
  specs.push(
    ...linearSpecs(`${prefix}.mlp.fc_in`, s.hidden, s.ffn, s.bias),
    ...linearSpecs(`${prefix}.mlp.fc_out`, s.ffn, s.hidden, s.bias),
    ...normSpecs(`${prefix}.mlp_norm`, s.hidden, s.norm),
  );
  return specs;
}

export function linearParams(P: ParamLookup, prefix: string, bias: boolean): LinearParams {
  return bias ? { weight: P(`${prefix}.weight`), bias: P(`${prefix}.bias`) } : { weight: P(`${prefix}.weight`) };
}

export function normParams(P: ParamLookup, prefix: string, kind: NormKind): NormParams {
  return kind === 'layer' ? { weight: P(`${prefix}.weight`), bias: P(`${prefix}.bias`) } : { weight: P(`${prefix}.weight`) };
}

function attentionParams(P: ParamLookup, prefix: string, bias: boolean): AttentionParams {
  return {
    q: linearParams(P, `${prefix}.q`, bias),
    k: linearParams(P, `${prefix}.k`, bias),
    v: linearParams(P, `${prefix}.v`, bias),
    o: linearParams(P, `${prefix}.o`, bias),
  };
}

export function blockParams(P: ParamLookup, prefix: string, s: Pick<BlockShape, 'bias' | 'gated' | 'norm' | 'cross'>): TransformerLayerParams {
  const mlp: MlpParams = {
    fcIn: linearParams(P, `${prefix}.mlp.fc_in`, s.bias),
    fcOut: linearParams(P, `${prefix}.mlp.fc_out`, s.bias),
    ...(s.gated ? { fcGate: linearParams(P, `${prefix}.mlp.fc_gate`, s.bias) } : {}),
  };
  return {
    selfAttn: attentionParams(P, `${prefix}.attn`, s.bias),
    selfAttnNorm: normParams(P, `${prefix}.attn_norm`, s.norm),
    ...(s.cross ? { crossAttn: attentionParams(P, `${prefix}.cross`, s.bias), crossAttnNorm: normParams(P, `${prefix}.cross_norm`, s.norm) } : {}),
    mlp,
    mlpNorm: normParams(P, `${prefix}.mlp_norm`, s.norm),
  };
}
