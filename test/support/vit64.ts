/**
 * A float64 ViTForImageClassification forward written from HF's modeling_vit.py (v4.33.2), on
 * HF-named weights: Conv2d(C, H, kernel = stride = patch) over [B,C,h,w] pixels, flatten(2) and
 * transpose(1, 2) (patches row-major), [CLS] first, + position embeddings; pre-LN layers
 * (layernorm_before, attention, residual; layernorm_after, exact GELU MLP, residual); final
 * layernorm; classifier on [CLS]; mean cross-entropy. Shares nothing with src/.
 */
import { geluExact, layerNormRow, matmul, rows, softmaxRow, transpose } from './ref64.ts';

export interface VitSizes {
  image: [number, number];
  patch: [number, number];
  channels: number;
  hidden: number;
  layers: number;
  heads: number;
  inter: number;
  eps: number;
  labels: number;
}

type Out = Map<string, { shape: number[]; data: number[] }>;
export type Weights64 = Map<string, { shape: number[]; data: number[] }>;

export const vitTokens = (s: VitSizes) => (s.image[0] / s.patch[0]) * (s.image[1] / s.patch[1]) + 1;

export function vitHfShapes(s: VitSizes): Array<[string, number[]]> {
  const H = s.hidden;
  const list: Array<[string, number[]]> = [
    ['vit.embeddings.cls_token', [1, 1, H]],
    ['vit.embeddings.position_embeddings', [1, vitTokens(s), H]],
    ['vit.embeddings.patch_embeddings.projection.weight', [H, s.channels, ...s.patch]],
    ['vit.embeddings.patch_embeddings.projection.bias', [H]],
  ];
  for (let l = 0; l < s.layers; l++) {
    const p = `vit.encoder.layer.${l}`;
    list.push([`${p}.layernorm_before.weight`, [H]], [`${p}.layernorm_before.bias`, [H]]);
    for (const n of ['attention.attention.query', 'attention.attention.key', 'attention.attention.value', 'attention.output.dense']) list.push([`${p}.${n}.weight`, [H, H]], [`${p}.${n}.bias`, [H]]);
    list.push([`${p}.layernorm_after.weight`, [H]], [`${p}.layernorm_after.bias`, [H]]);
    list.push([`${p}.intermediate.dense.weight`, [s.inter, H]], [`${p}.intermediate.dense.bias`, [s.inter]], [`${p}.output.dense.weight`, [H, s.inter]], [`${p}.output.dense.bias`, [H]]);
  }
  list.push(['vit.layernorm.weight', [H]], ['vit.layernorm.bias', [H]], ['classifier.weight', [s.labels, H]], ['classifier.bias', [s.labels]]);
  return list;
}

export function vitForward64(s: VitSizes, W: Weights64, B: number, pixels: number[], labels: number[]): Out {
  const w = (n: string) => {
    const t = W.get(n);
    if (!t) throw new Error(`missing ${n}`);
    return t.data;
  };
  const H = s.hidden, S = vitTokens(s), N = B * S, hd = H / s.heads;
  const [ih, iw] = s.image, [ph, pw] = s.patch, C = s.channels;
  const dense = (x: number[], name: string, n: number, i: number, o: number) => matmul(x, transpose(w(`${name}.weight`), o, i), n, i, o).map((v, k) => v + w(`${name}.bias`)[k % o]);
  const ln = (x: number[], name: string) => rows(x, H, (r) => layerNormRow(r, w(`${name}.weight`), w(`${name}.bias`), s.eps));
  const out: Out = new Map();
  const kernel = w('vit.embeddings.patch_embeddings.projection.weight'), kb = w('vit.embeddings.patch_embeddings.projection.bias');
  const cls = w('vit.embeddings.cls_token'), posEmb = w('vit.embeddings.position_embeddings');
  let h: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < H; d++) h.push(cls[d] + posEmb[d]);
    for (let r = 0; r < ih / ph; r++) for (let c = 0; c < iw / pw; c++) {
      const token = 1 + r * (iw / pw) + c;
      for (let o = 0; o < H; o++) {
        let acc = kb[o];
        for (let ch = 0; ch < C; ch++) for (let i = 0; i < ph; i++) for (let j = 0; j < pw; j++) {
          acc += pixels[((b * C + ch) * ih + r * ph + i) * iw + c * pw + j] * kernel[((o * C + ch) * ph + i) * pw + j];
        }
        h.push(acc + posEmb[token * H + o]);
      }
    }
  }
  for (let l = 0; l < s.layers; l++) {
    out.set(`hidden_states.${l}`, { shape: [B, S, H], data: h });
    const p = `vit.encoder.layer.${l}`;
    const a = ln(h, `${p}.layernorm_before`);
    const q = dense(a, `${p}.attention.attention.query`, N, H, H), k = dense(a, `${p}.attention.attention.key`, N, H, H), v = dense(a, `${p}.attention.attention.value`, N, H, H);
    const ctx = new Array(N * H).fill(0);
    const probs: number[] = [];
    for (let b = 0; b < B; b++) for (let head = 0; head < s.heads; head++) for (let i = 0; i < S; i++) {
      const scores: number[] = [];
      for (let j = 0; j < S; j++) {
        let sc = 0;
        for (let d = 0; d < hd; d++) sc += q[(b * S + i) * H + head * hd + d] * k[(b * S + j) * H + head * hd + d];
        scores.push(sc / Math.sqrt(hd));
      }
      const pr = softmaxRow(scores);
      probs.push(...pr);
      for (let d = 0; d < hd; d++) ctx[(b * S + i) * H + head * hd + d] = pr.reduce((acc, pj, j) => acc + pj * v[(b * S + j) * H + head * hd + d], 0);
    }
    out.set(`attentions.${l}`, { shape: [B, s.heads, S, S], data: probs });
    h = dense(ctx, `${p}.attention.output.dense`, N, H, H).map((val, i) => val + h[i]);
    const f = dense(dense(ln(h, `${p}.layernorm_after`), `${p}.intermediate.dense`, N, H, s.inter).map(geluExact), `${p}.output.dense`, N, s.inter, H);
    h = f.map((val, i) => val + h[i]);
  }
  out.set(`hidden_states.${s.layers}`, { shape: [B, S, H], data: h });
  const last = ln(h, 'vit.layernorm');
  out.set('last_hidden_state', { shape: [B, S, H], data: last });
  const first: number[] = [];
  for (let b = 0; b < B; b++) first.push(...last.slice(b * S * H, b * S * H + H));
  const logits = dense(first, 'classifier', B, H, s.labels);
  out.set('logits', { shape: [B, s.labels], data: logits });
  let sum = 0;
  labels.forEach((y, b) => (sum -= Math.log(softmaxRow(logits.slice(b * s.labels, (b + 1) * s.labels))[y])));
  out.set('loss', { shape: [1], data: [sum / B] });
  return out;
}
