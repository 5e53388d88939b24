/**
 * Float64 GPT2LMHeadModel forward from HF's modeling_gpt2.py (v4.30.2) on HF-named weights
 * (Conv1D weights [in, out]), for tests at sizes no fixture has. Shares nothing with src/.
 */
import { geluTanh, layerNormRow, matmul, rows, softmaxRow } from './ref64.ts';

export interface Gpt2Sizes {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  inner: number;
  positions: number;
}

export type Weights64 = Map<string, { shape: number[]; data: number[] }>;

export function gpt2HfShapes(s: Gpt2Sizes): Array<[string, number[]]> {
  const H = s.hidden;
  const list: Array<[string, number[]]> = [['transformer.wte.weight', [s.vocab, H]], ['transformer.wpe.weight', [s.positions, H]]];
  for (let l = 0; l < s.layers; l++) {
    const p = `transformer.h.${l}`;
    list.push([`${p}.ln_1.weight`, [H]], [`${p}.ln_1.bias`, [H]], [`${p}.attn.c_attn.weight`, [H, 3 * H]], [`${p}.attn.c_attn.bias`, [3 * H]]);
    list.push([`${p}.attn.c_proj.weight`, [H, H]], [`${p}.attn.c_proj.bias`, [H]], [`${p}.ln_2.weight`, [H]], [`${p}.ln_2.bias`, [H]]);
    list.push([`${p}.mlp.c_fc.weight`, [H, s.inner]], [`${p}.mlp.c_fc.bias`, [s.inner]], [`${p}.mlp.c_proj.weight`, [s.inner, H]], [`${p}.mlp.c_proj.bias`, [H]]);
  }
  list.push(['transformer.ln_f.weight', [H]], ['transformer.ln_f.bias', [H]]);
  return list;
}

export function gpt2Forward64(s: Gpt2Sizes, W: Weights64, B: number, T: number, ids: number[], mask: number[], labels: number[]) {
  const w = (n: string) => W.get(`transformer.${n}`)!.data;
  const H = s.hidden, N = B * T, hd = H / s.heads;
  const conv = (x: number[], name: string, i: number, o: number) => matmul(x, w(`${name}.weight`), N, i, o).map((v, k) => v + w(`${name}.bias`)[k % o]);
  const ln = (x: number[], name: string) => rows(x, H, (r) => layerNormRow(r, w(`${name}.weight`), w(`${name}.bias`), 1e-5));
  const out = new Map<string, { shape: number[]; data: number[] }>();
  let h: number[] = [];
  for (let i = 0; i < N; i++) for (let d = 0; d < H; d++) h.push(w('wte.weight')[ids[i] * H + d] + w('wpe.weight')[(i % T) * H + d]);
  for (let l = 0; l < s.layers; l++) {
    out.set(`hidden_states.${l}`, { shape: [B, T, H], data: h });
    const a = ln(h, `h.${l}.ln_1`);
    const qkv = conv(a, `h.${l}.attn.c_attn`, H, 3 * H);
    const ctx = new Array(N * H).fill(0);
    const probs: number[] = [];
    for (let b = 0; b < B; b++) for (let head = 0; head < s.heads; head++) for (let i = 0; i < T; i++) {
      const scores: number[] = [];
      for (let j = 0; j < T; j++) {
        let sc = 0;
        for (let d = 0; d < hd; d++) sc += qkv[(b * T + i) * 3 * H + head * hd + d] * qkv[(b * T + j) * 3 * H + H + head * hd + d];
        sc /= Math.sqrt(hd);
        if (j > i) sc = -3.4028234663852886e38;
        if (!mask[b * T + j]) sc += -3.4028234663852886e38;
        scores.push(sc);
      }
      const p = softmaxRow(scores.map((v) => (Number.isFinite(v) ? v : -Infinity)));
      probs.push(...p);
      for (let d = 0; d < hd; d++) ctx[(b * T + i) * H + head * hd + d] = p.reduce((acc, pj, j) => acc + pj * qkv[(b * T + j) * 3 * H + 2 * H + head * hd + d], 0);
    }
    out.set(`attentions.${l}`, { shape: [B, s.heads, T, T], data: probs });
    h = conv(ctx, `h.${l}.attn.c_proj`, H, H).map((v, i) => v + h[i]);
    const f = conv(conv(ln(h, `h.${l}.ln_2`), `h.${l}.mlp.c_fc`, H, s.inner).map(geluTanh), `h.${l}.mlp.c_proj`, s.inner, H);
    h = f.map((v, i) => v + h[i]);
  }
  h = ln(h, 'ln_f');
  out.set(`hidden_states.${s.layers}`, { shape: [B, T, H], data: h });
  const logits: number[] = [];
  for (let n = 0; n < N; n++) for (let v = 0; v < s.vocab; v++) {
    let acc = 0;
    for (let d = 0; d < H; d++) acc += h[n * H + d] * w('wte.weight')[v * H + d];
    logits.push(acc);
  }
  out.set('logits', { shape: [B, T, s.vocab], data: logits });
  let sum = 0, count = 0;
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) {
    const y = labels[b * T + t + 1];
    if (y === -100) continue;
    sum -= Math.log(softmaxRow(logits.slice((b * T + t) * s.vocab, (b * T + t + 1) * s.vocab))[y]);
    count++;
  }
  out.set('loss', { shape: [1], data: [sum / count] });
  return out;
}
