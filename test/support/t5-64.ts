/**
 * Float64 T5ForConditionalGeneration forward from HF's modeling_t5.py (v4.30.2) on HF-named
 * weights, for tests at sizes no fixture has (including heads·d_kv ≠ d_model and unequal stack
 * depths). Shares nothing with src/.
 */
import { geluTanh, matmul, rmsNormRow, rows, softmaxRow, transpose } from './ref64.ts';

export interface T5Sizes {
  vocab: number;
  dModel: number;
  dKv: number;
  dFf: number;
  heads: number;
  encLayers: number;
  decLayers: number;
  buckets: number;
  maxDistance: number;
  gated: boolean;
  tied: boolean;
}

export type Weights64 = Map<string, { shape: number[]; data: number[] }>;

export function t5HfShapes(s: T5Sizes): Array<[string, number[]]> {
  const inner = s.heads * s.dKv, d = s.dModel;
  const list: Array<[string, number[]]> = [['shared.weight', [s.vocab, d]]];
  const attn = (p: string) => { for (const x of ['q', 'k', 'v']) list.push([`${p}.${x}.weight`, [inner, d]]); list.push([`${p}.o.weight`, [d, inner]]); };
  const ff = (p: string) => {
    if (s.gated) list.push([`${p}.DenseReluDense.wi_0.weight`, [s.dFf, d]], [`${p}.DenseReluDense.wi_1.weight`, [s.dFf, d]]);
    else list.push([`${p}.DenseReluDense.wi.weight`, [s.dFf, d]]);
    list.push([`${p}.DenseReluDense.wo.weight`, [d, s.dFf]], [`${p}.layer_norm.weight`, [d]]);
  };
  for (const [S, L] of [['encoder', s.encLayers], ['decoder', s.decLayers]] as const) {
    for (let i = 0; i < L; i++) {
      attn(`${S}.block.${i}.layer.0.SelfAttention`);
      list.push([`${S}.block.${i}.layer.0.layer_norm.weight`, [d]]);
      if (i === 0) list.push([`${S}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`, [s.buckets, s.heads]]);
      if (S === 'decoder') {
        attn(`${S}.block.${i}.layer.1.EncDecAttention`);
        list.push([`${S}.block.${i}.layer.1.layer_norm.weight`, [d]]);
      }
      ff(`${S}.block.${i}.layer.${S === 'encoder' ? 1 : 2}`);
    }
    list.push([`${S}.final_layer_norm.weight`, [d]]);
  }
  if (!s.tied) list.push(['lm_head.weight', [s.vocab, d]]);
  return list;
}

function bucket(r: number, buckets: number, maxDistance: number, bidirectional: boolean): number {
  let nb = buckets, base = 0, n: number;
  if (bidirectional) { nb = buckets / 2; base = r > 0 ? nb : 0; n = Math.abs(r); } else n = Math.max(0, -r);
  const exact = nb / 2;
  if (n < exact) return base + n;
  return base + Math.min(nb - 1, exact + Math.floor((Math.log(n / exact) / Math.log(maxDistance / exact)) * (nb - exact)));
}

export function t5Forward64(s: T5Sizes, W: Weights64, B: number, Te: number, Td: number, ids: number[], mask: number[], decIds: number[], labels: number[]) {
  const w = (n: string) => { const t = W.get(n); if (!t) throw new Error(`missing ${n}`); return t.data; };
  const d = s.dModel, inner = s.heads * s.dKv, NEG = -3.4028234663852886e38;
  const lin = (x: number[], name: string, rowsN: number, i: number, o: number) => matmul(x, transpose(w(name), o, i), rowsN, i, o);
  const norm = (x: number[], name: string) => rows(x, d, (r) => rmsNormRow(r, w(name), 1e-6));
  const out = new Map<string, { shape: number[]; data: number[] }>();
  const attention = (p: string, xq: number[], xkv: number[], Tq: number, Tk: number, bias: (b: number, h: number, i: number, j: number) => number) => {
    const q = lin(xq, `${p}.q.weight`, B * Tq, d, inner), k = lin(xkv, `${p}.k.weight`, B * Tk, d, inner), v = lin(xkv, `${p}.v.weight`, B * Tk, d, inner);
    const ctx = new Array(B * Tq * inner).fill(0);
    const probs: number[] = [];
    for (let b = 0; b < B; b++) for (let h = 0; h < s.heads; h++) for (let i = 0; i < Tq; i++) {
      const sc: number[] = [];
      for (let j = 0; j < Tk; j++) {
        let acc = 0;
        for (let e = 0; e < s.dKv; e++) acc += q[(b * Tq + i) * inner + h * s.dKv + e] * k[(b * Tk + j) * inner + h * s.dKv + e];
        sc.push(acc + bias(b, h, i, j));
      }
      const pr = softmaxRow(sc);
      probs.push(...pr);
      for (let e = 0; e < s.dKv; e++) ctx[(b * Tq + i) * inner + h * s.dKv + e] = pr.reduce((a, pj, j) => a + pj * v[(b * Tk + j) * inner + h * s.dKv + e], 0);
    }
    return { out: lin(ctx, `${p}.o.weight`, B * Tq, inner, d), probs };
  };
  const ffn = (p: string, x: number[], rowsN: number) => {
    const act = s.gated ? lin(x, `${p}.DenseReluDense.wi_0.weight`, rowsN, d, s.dFf).map(geluTanh) : lin(x, `${p}.DenseReluDense.wi.weight`, rowsN, d, s.dFf).map((v) => Math.max(0, v));
    const hidden = s.gated ? act.map((g, i) => g * lin(x, `${p}.DenseReluDense.wi_1.weight`, rowsN, d, s.dFf)[i]) : act;
    return lin(hidden, `${p}.DenseReluDense.wo.weight`, rowsN, s.dFf, d);
  };
  const embed = (tok: number[]) => tok.flatMap((t) => w('shared.weight').slice(t * d, (t + 1) * d));
  const add = (a: number[], b: number[]) => a.map((v, i) => v + b[i]);

  const encRel = w('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight');
  let x = embed(ids);
  for (let l = 0; l < s.encLayers; l++) {
    out.set(`encoder_hidden_states.${l}`, { shape: [B, Te, d], data: x });
    const a = attention(`encoder.block.${l}.layer.0.SelfAttention`, norm(x, `encoder.block.${l}.layer.0.layer_norm.weight`), norm(x, `encoder.block.${l}.layer.0.layer_norm.weight`), Te, Te,
      (b, h, i, j) => encRel[bucket(j - i, s.buckets, s.maxDistance, true) * s.heads + h] + (mask[b * Te + j] ? 0 : NEG));
    out.set(`encoder_attentions.${l}`, { shape: [B, s.heads, Te, Te], data: a.probs });
    x = add(x, a.out);
    x = add(x, ffn(`encoder.block.${l}.layer.1`, norm(x, `encoder.block.${l}.layer.1.layer_norm.weight`), B * Te));
  }
  const enc = norm(x, 'encoder.final_layer_norm.weight');
  out.set(`encoder_hidden_states.${s.encLayers}`, { shape: [B, Te, d], data: enc });
  out.set('encoder_last_hidden_state', { shape: [B, Te, d], data: enc });

  const decRel = w('decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight');
  let y = embed(decIds);
  for (let l = 0; l < s.decLayers; l++) {
    out.set(`decoder_hidden_states.${l}`, { shape: [B, Td, d], data: y });
    const n0 = norm(y, `decoder.block.${l}.layer.0.layer_norm.weight`);
    const a = attention(`decoder.block.${l}.layer.0.SelfAttention`, n0, n0, Td, Td, (_b, h, i, j) => decRel[bucket(j - i, s.buckets, s.maxDistance, false) * s.heads + h] + (j > i ? NEG : 0));
    out.set(`decoder_attentions.${l}`, { shape: [B, s.heads, Td, Td], data: a.probs });
    y = add(y, a.out);
    const c = attention(`decoder.block.${l}.layer.1.EncDecAttention`, norm(y, `decoder.block.${l}.layer.1.layer_norm.weight`), enc, Td, Te, (b, _h, _i, j) => (mask[b * Te + j] ? 0 : NEG));
    out.set(`cross_attentions.${l}`, { shape: [B, s.heads, Td, Te], data: c.probs });
    y = add(y, c.out);
    y = add(y, ffn(`decoder.block.${l}.layer.2`, norm(y, `decoder.block.${l}.layer.2.layer_norm.weight`), B * Td));
  }
  const dec = norm(y, 'decoder.final_layer_norm.weight');
  out.set(`decoder_hidden_states.${s.decLayers}`, { shape: [B, Td, d], data: dec });
  const head = s.tied ? w('shared.weight') : w('lm_head.weight');
  const scaled = s.tied ? dec.map((v) => v * d ** -0.5) : dec;
  const logits = matmul(scaled, transpose(head, s.vocab, d), B * Td, d, s.vocab);
  out.set('logits', { shape: [B, Td, s.vocab], data: logits });
  let sum = 0, count = 0;
  labels.forEach((y2, i) => {
    if (y2 === -100) return;
    sum -= Math.log(softmaxRow(logits.slice(i * s.vocab, (i + 1) * s.vocab))[y2]);
    count++;
  });
  out.set('loss', { shape: [1], data: [sum / count] });
  return out;
}
