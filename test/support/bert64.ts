/**
 * A float64 BertForPreTraining forward written from HF's modeling_bert.py (v4.30.2), on HF-named
 * weights, for tests that need a reference at sizes no fixture has. Shares nothing with src/.
 */
import { geluExact, layerNormRow, matmul, rows, softmaxRow, transpose } from './ref64.ts';

export interface BertSizes {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  inter: number;
  maxPos: number;
  eps: number;
}

export type Weights = Map<string, { shape: number[]; data: number[] }>;

export interface BertInputs {
  batch: number;
  seq: number;
  inputIds: number[];
  tokenTypes: number[];
  mask: number[];
  labels: number[];
  nsp: number[];
}

export function bertForward64(s: BertSizes, W: Weights, x: BertInputs): Map<string, { shape: number[]; data: number[] }> {
  const w = (n: string) => {
    const t = W.get(n);
    if (!t) throw new Error(`missing ${n}`);
    return t.data;
  };
  const H = s.hidden, N = x.batch * x.seq, hd = H / s.heads;
  const dense = (inp: number[], name: string, rowsN: number, i: number, o: number) => matmul(inp, transpose(w(`${name}.weight`), o, i), rowsN, i, o).map((v, k) => v + w(`${name}.bias`)[k % o]);
  const ln = (inp: number[], name: string) => rows(inp, H, (r) => layerNormRow(r, w(`${name}.weight`), w(`${name}.bias`), s.eps));
  const out = new Map<string, { shape: number[]; data: number[] }>();

  let h: number[] = [];
  for (let i = 0; i < N; i++) {
    const pos = i % x.seq;
    for (let d = 0; d < H; d++) {
      h.push(w('bert.embeddings.word_embeddings.weight')[x.inputIds[i] * H + d] + w('bert.embeddings.token_type_embeddings.weight')[x.tokenTypes[i] * H + d] + w('bert.embeddings.position_embeddings.weight')[pos * H + d]);
    }
  }
  h = ln(h, 'bert.embeddings.LayerNorm');
  out.set('hidden_states.0', { shape: [x.batch, x.seq, H], data: h });
  for (let l = 0; l < s.layers; l++) {
    const p = `bert.encoder.layer.${l}`;
    const q = dense(h, `${p}.attention.self.query`, N, H, H), k = dense(h, `${p}.attention.self.key`, N, H, H), v = dense(h, `${p}.attention.self.value`, N, H, H);
    const ctx = new Array(N * H).fill(0);
    const probs: number[] = [];
    for (let b = 0; b < x.batch; b++) for (let head = 0; head < s.heads; head++) for (let i = 0; i < x.seq; i++) {
      const scores: number[] = [];
      for (let j = 0; j < x.seq; j++) {
        let sc = 0;
        for (let d = 0; d < hd; d++) sc += q[(b * x.seq + i) * H + head * hd + d] * k[(b * x.seq + j) * H + head * hd + d];
        scores.push(sc / Math.sqrt(hd) + (x.mask[b * x.seq + j] ? 0 : -3.4028234663852886e38));
      }
      const pr = softmaxRow(scores);
      probs.push(...pr);
      for (let d = 0; d < hd; d++) ctx[(b * x.seq + i) * H + head * hd + d] = pr.reduce((a, pj, j) => a + pj * v[(b * x.seq + j) * H + head * hd + d], 0);
    }
    out.set(`attentions.${l}`, { shape: [x.batch, s.heads, x.seq, x.seq], data: probs });
    const a = ln(dense(ctx, `${p}.attention.output.dense`, N, H, H).map((val, i) => val + h[i]), `${p}.attention.output.LayerNorm`);
    const f = dense(dense(a, `${p}.intermediate.dense`, N, H, s.inter).map(geluExact), `${p}.output.dense`, N, s.inter, H);
    h = ln(f.map((val, i) => val + a[i]), `${p}.output.LayerNorm`);
    out.set(`hidden_states.${l + 1}`, { shape: [x.batch, x.seq, H], data: h });
  }
  const t = ln(dense(h, 'cls.predictions.transform.dense', N, H, H).map(geluExact), 'cls.predictions.transform.LayerNorm');
  const logits = matmul(t, transpose(w('bert.embeddings.word_embeddings.weight'), s.vocab, H), N, H, s.vocab).map((v, i) => v + w('cls.predictions.bias')[i % s.vocab]);
  out.set('prediction_logits', { shape: [x.batch, x.seq, s.vocab], data: logits });
  const first: number[] = [];
  for (let b = 0; b < x.batch; b++) first.push(...h.slice(b * x.seq * H, b * x.seq * H + H));
  const pooled = dense(first, 'bert.pooler.dense', x.batch, H, H).map(Math.tanh);
  const nspLogits = dense(pooled, 'cls.seq_relationship', x.batch, H, 2);
  out.set('seq_relationship_logits', { shape: [x.batch, 2], data: nspLogits });
  const ce = (lg: number[], C: number, targets: number[]) => {
    let sum = 0, count = 0;
    targets.forEach((tg, i) => {
      if (tg === -100) return;
      sum -= Math.log(softmaxRow(lg.slice(i * C, (i + 1) * C))[tg]);
      count++;
    });
    return sum / count;
  };
  const mlm = ce(logits, s.vocab, x.labels), nsp = ce(nspLogits, 2, x.nsp);
  out.set('mlm_loss', { shape: [1], data: [mlm] });
  out.set('nsp_loss', { shape: [1], data: [nsp] });
  out.set('loss', { shape: [1], data: [mlm + nsp] });
  return out;
}

/** HF parameter names and shapes of BertForPreTraining at these sizes (safetensors layout, tied aliases removed). */
export function bertHfShapes(s: BertSizes): Array<[string, number[]]> {
  const H = s.hidden;
  const list: Array<[string, number[]]> = [
    ['bert.embeddings.word_embeddings.weight', [s.vocab, H]],
    ['bert.embeddings.position_embeddings.weight', [s.maxPos, H]],
    ['bert.embeddings.token_type_embeddings.weight', [2, H]],
    ['bert.embeddings.LayerNorm.weight', [H]],
    ['bert.embeddings.LayerNorm.bias', [H]],
  ];
  for (let l = 0; l < s.layers; l++) {
    const p = `bert.encoder.layer.${l}`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) list.push([`${p}.${n}.weight`, [H, H]], [`${p}.${n}.bias`, [H]]);
    list.push([`${p}.attention.output.LayerNorm.weight`, [H]], [`${p}.attention.output.LayerNorm.bias`, [H]]);
    list.push([`${p}.intermediate.dense.weight`, [s.inter, H]], [`${p}.intermediate.dense.bias`, [s.inter]]);
    list.push([`${p}.output.dense.weight`, [H, s.inter]], [`${p}.output.dense.bias`, [H]]);
    list.push([`${p}.output.LayerNorm.weight`, [H]], [`${p}.output.LayerNorm.bias`, [H]]);
  }
  list.push(['bert.pooler.dense.weight', [H, H]], ['bert.pooler.dense.bias', [H]]);
  list.push(['cls.predictions.transform.dense.weight', [H, H]], ['cls.predictions.transform.dense.bias', [H]]);
  list.push(['cls.predictions.transform.LayerNorm.weight', [H]], ['cls.predictions.transform.LayerNorm.bias', [H]]);
  list.push(['cls.predictions.bias', [s.vocab]], ['cls.seq_relationship.weight', [2, H]], ['cls.seq_relationship.bias', [2]]);
  return list;
}
