/**
 * A float64 LlamaForCausalLM forward written from HF's modeling_llama.py (v4.33.2), on HF-named
 * weights, for tests at sizes no fixture has: RMSNorm w·x/√(mean(x²)+eps), rotary positions in the
 * rotate_half convention with θ^(−2i/d), grouped-query attention (query head j reads key/value
 * head ⌊j / (nh/nkv)⌋, repeat_kv), causal + padding mask, SwiGLU, untied or tied head. Shares
 * nothing with src/.
 */
import { matmul, rmsNormRow, rows, softmaxRow, transpose } from './ref64.ts';

export interface LlamaSizes {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  inter: number;
  eps: number;
  theta: number;
  tied: boolean;
}

export type Weights64 = Map<string, { shape: number[]; data: number[] }>;
type Out = Map<string, { shape: number[]; data: number[] }>;

export function llamaHfShapes(s: LlamaSizes): Array<[string, number[]]> {
  const H = s.hidden, hd = H / s.heads, KV = s.kvHeads * hd;
  const list: Array<[string, number[]]> = [['model.embed_tokens.weight', [s.vocab, H]]];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}`;
    list.push([`${p}.input_layernorm.weight`, [H]], [`${p}.self_attn.q_proj.weight`, [H, H]], [`${p}.self_attn.k_proj.weight`, [KV, H]], [`${p}.self_attn.v_proj.weight`, [KV, H]], [`${p}.self_attn.o_proj.weight`, [H, H]]);
    list.push([`${p}.post_attention_layernorm.weight`, [H]], [`${p}.mlp.gate_proj.weight`, [s.inter, H]], [`${p}.mlp.up_proj.weight`, [s.inter, H]], [`${p}.mlp.down_proj.weight`, [H, s.inter]]);
  }
  list.push(['model.norm.weight', [H]]);
  if (!s.tied) list.push(['lm_head.weight', [s.vocab, H]]);
  return list;
}

/** ids, mask, labels [B·T]; positions [B·T] (HF's default arange when not given). */
export function llamaForward64(s: LlamaSizes, W: Weights64, B: number, T: number, ids: number[], mask: number[], labels: number[], positions?: number[]): Out {
  const w = (n: string) => {
    const t = W.get(n);
    if (!t) throw new Error(`missing ${n}`);
    return t.data;
  };
  const H = s.hidden, N = B * T, hd = H / s.heads, KV = s.kvHeads * hd, groups = s.heads / s.kvHeads;
  const lin = (x: number[], name: string, i: number, o: number) => matmul(x, transpose(w(name), o, i), N, i, o); // torch [o, i]
  const norm = (x: number[], name: string) => rows(x, H, (r) => rmsNormRow(r, w(name), s.eps));
  const pos = positions ?? Array.from({ length: N }, (_, n) => n % T);
  const rope = (x: number[], width: number) => {
    const out = x.slice();
    for (let n = 0; n < N; n++) for (let h = 0; h < width / hd; h++) for (let i = 0; i < hd / 2; i++) {
      const angle = pos[n] * s.theta ** ((-2 * i) / hd);
      const a = n * width + h * hd + i, c = a + hd / 2;
      out[a] = x[a] * Math.cos(angle) - x[c] * Math.sin(angle);
      out[c] = x[c] * Math.cos(angle) + x[a] * Math.sin(angle);
    }
    return out;
  };
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const out: Out = new Map();
  let h: number[] = [];
  for (let n = 0; n < N; n++) h.push(...w('model.embed_tokens.weight').slice(ids[n] * H, (ids[n] + 1) * H));
  for (let l = 0; l < s.layers; l++) {
    out.set(`hidden_states.${l}`, { shape: [B, T, H], data: h });
    const p = `model.layers.${l}`;
    const a = norm(h, `${p}.input_layernorm.weight`);
    const q = rope(lin(a, `${p}.self_attn.q_proj.weight`, H, H), H), k = rope(lin(a, `${p}.self_attn.k_proj.weight`, H, KV), KV), v = lin(a, `${p}.self_attn.v_proj.weight`, H, KV);
    const ctx = new Array(N * H).fill(0);
    const probs: number[] = [];
    for (let b = 0; b < B; b++) for (let j = 0; j < s.heads; j++) for (let i = 0; i < T; i++) {
      const g = Math.floor(j / groups);
      const scores: number[] = [];
      for (let t = 0; t < T; t++) {
        let sc = 0;
        for (let d = 0; d < hd; d++) sc += q[(b * T + i) * H + j * hd + d] * k[(b * T + t) * KV + g * hd + d];
        sc /= Math.sqrt(hd);
        if (t > i) sc += -3.4028234663852886e38;
        if (!mask[b * T + t]) sc += -3.4028234663852886e38;
        scores.push(Number.isFinite(sc) ? sc : -Infinity);
      }
      const pr = softmaxRow(scores);
      probs.push(...pr);
      for (let d = 0; d < hd; d++) ctx[(b * T + i) * H + j * hd + d] = pr.reduce((acc, pt, t) => acc + pt * v[(b * T + t) * KV + g * hd + d], 0);
    }
    out.set(`attentions.${l}`, { shape: [B, s.heads, T, T], data: probs });
    h = lin(ctx, `${p}.self_attn.o_proj.weight`, H, H).map((val, i) => val + h[i]);
    const m = norm(h, `${p}.post_attention_layernorm.weight`);
    const up = lin(m, `${p}.mlp.up_proj.weight`, H, s.inter);
    const gated = lin(m, `${p}.mlp.gate_proj.weight`, H, s.inter).map((val, i) => silu(val) * up[i]);
    h = matmul(gated, transpose(w(`${p}.mlp.down_proj.weight`), H, s.inter), N, s.inter, H).map((val, i) => val + h[i]);
  }
  h = norm(h, 'model.norm.weight');
  out.set(`hidden_states.${s.layers}`, { shape: [B, T, H], data: h });
  const head = w(s.tied ? 'model.embed_tokens.weight' : 'lm_head.weight');
  const logits = matmul(h, transpose(head, s.vocab, H), N, H, s.vocab);
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
