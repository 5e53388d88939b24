/**
 * A float64 RobertaForMaskedLM forward written from HF's modeling_roberta.py (v4.33.2), on
 * HF-named weights: positions from create_position_ids_from_input_ids (padding_idx + cumsum of
 * real tokens; pads at padding_idx), (word + token type) + position then LayerNorm, post-LN
 * layers with `hidden_act`, and the LM head dense -> exact GELU -> LayerNorm -> tied decoder + bias.
 * Shares nothing with src/.
 */
import { erf, layerNormRow, matmul, rows, softmaxRow, transpose } from './ref64.ts';

export interface RobertaSizes {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  inter: number;
  maxPos: number;
  typeVocab: number;
  eps: number;
  pad: number;
  /** The encoder MLP's activation; the LM head's is exact GELU regardless. */
  act: (v: number) => number;
}

type Out = Map<string, { shape: number[]; data: number[] }>;
export type Weights64 = Map<string, { shape: number[]; data: number[] }>;

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

export function robertaHfShapes(s: RobertaSizes): Array<[string, number[]]> {
  const H = s.hidden;
  const list: Array<[string, number[]]> = [
    ['roberta.embeddings.word_embeddings.weight', [s.vocab, H]],
    ['roberta.embeddings.position_embeddings.weight', [s.maxPos, H]],
    ['roberta.embeddings.token_type_embeddings.weight', [s.typeVocab, H]],
    ['roberta.embeddings.LayerNorm.weight', [H]],
    ['roberta.embeddings.LayerNorm.bias', [H]],
  ];
  for (let l = 0; l < s.layers; l++) {
    const p = `roberta.encoder.layer.${l}`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) list.push([`${p}.${n}.weight`, [H, H]], [`${p}.${n}.bias`, [H]]);
    list.push([`${p}.attention.output.LayerNorm.weight`, [H]], [`${p}.attention.output.LayerNorm.bias`, [H]]);
    list.push([`${p}.intermediate.dense.weight`, [s.inter, H]], [`${p}.intermediate.dense.bias`, [s.inter]]);
    list.push([`${p}.output.dense.weight`, [H, s.inter]], [`${p}.output.dense.bias`, [H]]);
    list.push([`${p}.output.LayerNorm.weight`, [H]], [`${p}.output.LayerNorm.bias`, [H]]);
  }
  list.push(['lm_head.dense.weight', [H, H]], ['lm_head.dense.bias', [H]], ['lm_head.layer_norm.weight', [H]], ['lm_head.layer_norm.bias', [H]], ['lm_head.bias', [s.vocab]]);
  return list;
}

/** HF create_position_ids_from_input_ids for one row. */
export function robertaPositions(ids: number[], pad: number): number[] {
  let seen = 0;
  return ids.map((id) => (id === pad ? pad : pad + ++seen));
}

export function robertaForward64(s: RobertaSizes, W: Weights64, B: number, T: number, ids: number[], tokenTypes: number[], mask: number[], labels: number[]): Out {
  const w = (n: string) => {
    const t = W.get(n);
    if (!t) throw new Error(`missing ${n}`);
    return t.data;
  };
  const H = s.hidden, N = B * T, hd = H / s.heads;
  const dense = (x: number[], name: string, n: number, i: number, o: number) => matmul(x, transpose(w(`${name}.weight`), o, i), n, i, o).map((v, k) => v + w(`${name}.bias`)[k % o]);
  const ln = (x: number[], name: string) => rows(x, H, (r) => layerNormRow(r, w(`${name}.weight`), w(`${name}.bias`), s.eps));
  const positions = Array.from({ length: B }, (_, b) => robertaPositions(ids.slice(b * T, (b + 1) * T), s.pad)).flat();
  const out: Out = new Map();
  let h: number[] = [];
  for (let n = 0; n < N; n++) for (let d = 0; d < H; d++) {
    h.push(w('roberta.embeddings.word_embeddings.weight')[ids[n] * H + d] + w('roberta.embeddings.token_type_embeddings.weight')[tokenTypes[n] * H + d] + w('roberta.embeddings.position_embeddings.weight')[positions[n] * H + d]);
  }
  h = ln(h, 'roberta.embeddings.LayerNorm');
  out.set('hidden_states.0', { shape: [B, T, H], data: h });
  for (let l = 0; l < s.layers; l++) {
    const p = `roberta.encoder.layer.${l}`;
    const q = dense(h, `${p}.attention.self.query`, N, H, H), k = dense(h, `${p}.attention.self.key`, N, H, H), v = dense(h, `${p}.attention.self.value`, N, H, H);
    const ctx = new Array(N * H).fill(0);
    const probs: number[] = [];
    for (let b = 0; b < B; b++) for (let head = 0; head < s.heads; head++) for (let i = 0; i < T; i++) {
      const scores: number[] = [];
      for (let j = 0; j < T; j++) {
        let sc = 0;
        for (let d = 0; d < hd; d++) sc += q[(b * T + i) * H + head * hd + d] * k[(b * T + j) * H + head * hd + d];
        scores.push(sc / Math.sqrt(hd) + (mask[b * T + j] ? 0 : -3.4028234663852886e38));
      }
      const pr = softmaxRow(scores);
      probs.push(...pr);
      for (let d = 0; d < hd; d++) ctx[(b * T + i) * H + head * hd + d] = pr.reduce((a, pj, j) => a + pj * v[(b * T + j) * H + head * hd + d], 0);
    }
    out.set(`attentions.${l}`, { shape: [B, s.heads, T, T], data: probs });
    const a = ln(dense(ctx, `${p}.attention.output.dense`, N, H, H).map((val, i) => val + h[i]), `${p}.attention.output.LayerNorm`);
    const f = dense(dense(a, `${p}.intermediate.dense`, N, H, s.inter).map(s.act), `${p}.output.dense`, N, s.inter, H);
    h = ln(f.map((val, i) => val + a[i]), `${p}.output.LayerNorm`);
    out.set(`hidden_states.${l + 1}`, { shape: [B, T, H], data: h });
  }
  const t = ln(dense(h, 'lm_head.dense', N, H, H).map(gelu), 'lm_head.layer_norm');
  const logits = matmul(t, transpose(w('roberta.embeddings.word_embeddings.weight'), s.vocab, H), N, H, s.vocab).map((v, i) => v + w('lm_head.bias')[i % s.vocab]);
  out.set('logits', { shape: [B, T, s.vocab], data: logits });
  let sum = 0, count = 0;
  labels.forEach((y, n) => {
    if (y === -100) return;
    sum -= Math.log(softmaxRow(logits.slice(n * s.vocab, (n + 1) * s.vocab))[y]);
    count++;
  });
  out.set('loss', { shape: [1], data: [sum / count] });
  return out;
}
