/**
 * Where each of our taps lives in a graph exported by PyTorch's ONNX exporter from the HF model,
 * as data. The exporter names nodes by module scope (`/bert/encoder/layer.0/attention/self/Softmax`,
 * baselines/bert/README.md "Node and value names"), so a tap is located by the module that computes
 * it — not by node numbering inside a module, which changes with the op set:
 *
 *   { scope }         the module's result: the output of the last node inside the scope
 *   { node, input? }  one node's output (or its input k: the softmax input is the scores)
 *   { output }        a value by name (graph outputs carry the reference's tensor names)
 *   null              the exporter keeps no such value (GPT-2 applies its causal mask inside
 *                     each layer, so our combined mask has no counterpart)
 *
 * `{i}` stands for a layer index. A tap missing here, or whose locator finds nothing in the graph
 * (another exporter, renamed modules), is matched by value instead (correspond.ts), and says so.
 */

export type Locator = { scope: string } | { node: string; input?: number } | { output: string };

export interface ScopeTable {
  /** What produced graphs this table fits. */
  exporter: string;
  taps: Readonly<Record<string, Locator | null>>;
}

const hfBert: ScopeTable = {
  exporter: 'torch.onnx.export of transformers BertForPreTraining',
  taps: {
    'embeddings': { node: '/bert/embeddings/Add_1' },
    'embeddings.norm': { scope: '/bert/embeddings/LayerNorm' },
    'attention_bias': { node: '/bert/Mul' },
    'layer.{i}/attn.scores': { node: '/bert/encoder/layer.{i}/attention/self/Softmax', input: 0 },
    'layer.{i}/attn.probs': { node: '/bert/encoder/layer.{i}/attention/self/Softmax' },
    'layer.{i}/attn.out': { scope: '/bert/encoder/layer.{i}/attention/output/dense' },
    'layer.{i}/attn.residual': { node: '/bert/encoder/layer.{i}/attention/output/Add' },
    'layer.{i}/attn_norm': { scope: '/bert/encoder/layer.{i}/attention/output/LayerNorm' },
    'layer.{i}/mlp.fc_in': { scope: '/bert/encoder/layer.{i}/intermediate/dense' },
    'layer.{i}/mlp.act': { scope: '/bert/encoder/layer.{i}/intermediate/intermediate_act_fn' },
    'layer.{i}/mlp.out': { scope: '/bert/encoder/layer.{i}/output/dense' },
    'layer.{i}/mlp.residual': { node: '/bert/encoder/layer.{i}/output/Add' },
    'layer.{i}/mlp_norm': { scope: '/bert/encoder/layer.{i}/output/LayerNorm' },
    'head.transform': { scope: '/cls/predictions/transform/dense' },
    'head.act': { scope: '/cls/predictions/transform/transform_act_fn' },
    'head.norm': { scope: '/cls/predictions/transform/LayerNorm' },
    'logits': { output: 'prediction_logits' },
    'pooler': { scope: '/bert/pooler' },
    'nsp_logits': { output: 'seq_relationship_logits' },
  },
};

const hfGpt2: ScopeTable = {
  exporter: 'torch.onnx.export of transformers GPT2LMHeadModel',
  taps: {
    'embeddings': { output: 'hidden_states.0' },
    'attention_bias': null,
    'layer.{i}/attn_norm': { scope: '/transformer/h.{i}/ln_1' },
    'layer.{i}/attn.scores': { node: '/transformer/h.{i}/attn/Softmax', input: 0 },
    'layer.{i}/attn.probs': { node: '/transformer/h.{i}/attn/Softmax' },
    'layer.{i}/attn.out': { scope: '/transformer/h.{i}/attn/c_proj' },
    'layer.{i}/attn.residual': { node: '/transformer/h.{i}/Add' },
    'layer.{i}/mlp_norm': { scope: '/transformer/h.{i}/ln_2' },
    'layer.{i}/mlp.fc_in': { scope: '/transformer/h.{i}/mlp/c_fc' },
    'layer.{i}/mlp.act': { scope: '/transformer/h.{i}/mlp/act' },
    'layer.{i}/mlp.out': { scope: '/transformer/h.{i}/mlp/c_proj' },
    'layer.{i}/mlp.residual': { node: '/transformer/h.{i}/Add_1' },
    'final_norm': { scope: '/transformer/ln_f' },
    'logits': { output: 'logits' },
  },
};

/** T5 v1.0 (DenseReluDense). HF computes the position bias (with the mask added) in block 0's attention and passes it on. */
function hfT5Stack(stack: 'encoder' | 'decoder'): Record<string, Locator | null> {
  const mlpLayer = stack === 'encoder' ? 1 : 2;
  const block = `/${stack}/block.{i}`;
  const taps: Record<string, Locator | null> = {
    [`${stack}/embeddings`]: { output: `${stack}_hidden_states.0` },
    [`${stack}/position_bias`]: { node: `/${stack}/block.0/layer.0/SelfAttention/${stack === 'encoder' ? 'Add_3' : 'Add_1'}` },
    [`${stack}/layer.{i}/attn_norm`]: { scope: `${block}/layer.0/layer_norm` },
    [`${stack}/layer.{i}/attn.scores`]: { node: `${block}/layer.0/SelfAttention/Softmax`, input: 0 },
    [`${stack}/layer.{i}/attn.probs`]: { node: `${block}/layer.0/SelfAttention/Softmax` },
    [`${stack}/layer.{i}/attn.out`]: { scope: `${block}/layer.0/SelfAttention/o` },
    [`${stack}/layer.{i}/attn.residual`]: { node: `${block}/layer.0/Add` },
    [`${stack}/layer.{i}/mlp_norm`]: { scope: `${block}/layer.${mlpLayer}/layer_norm` },
    [`${stack}/layer.{i}/mlp.fc_in`]: { scope: `${block}/layer.${mlpLayer}/DenseReluDense/wi` },
    [`${stack}/layer.{i}/mlp.act`]: { scope: `${block}/layer.${mlpLayer}/DenseReluDense/act` },
    [`${stack}/layer.{i}/mlp.out`]: { scope: `${block}/layer.${mlpLayer}/DenseReluDense/wo` },
    [`${stack}/layer.{i}/mlp.residual`]: { node: `${block}/layer.${mlpLayer}/Add` },
    [`${stack}/final_norm`]: { scope: `/${stack}/final_layer_norm` },
  };
  if (stack === 'decoder') {
    Object.assign(taps, {
      'decoder/layer.{i}/cross_norm': { scope: `${block}/layer.1/layer_norm` },
      'decoder/layer.{i}/cross.scores': { node: `${block}/layer.1/EncDecAttention/Softmax`, input: 0 },
      'decoder/layer.{i}/cross.probs': { node: `${block}/layer.1/EncDecAttention/Softmax` },
      'decoder/layer.{i}/cross.out': { scope: `${block}/layer.1/EncDecAttention/o` },
      'decoder/layer.{i}/cross.residual': { node: `${block}/layer.1/Add` },
    });
  }
  return taps;
}

const hfT5: ScopeTable = {
  exporter: 'torch.onnx.export of transformers T5 v1.0: model.encoder, then T5ForConditionalGeneration with encoder_outputs',
  taps: { ...hfT5Stack('encoder'), ...hfT5Stack('decoder'), 'logits': { output: 'logits' } },
};

/** Tables by model family; a family without one is matched by value alone. */
export const ONNX_SCOPE_TABLES: Readonly<Record<string, ScopeTable>> = { bert: hfBert, gpt2: hfGpt2, t5: hfT5 };

/** The locator for one concrete tap name ("layer.3/attn.scores"), `{i}` filled in; undefined when the table has no entry. */
export function locatorFor(table: ScopeTable | undefined, tapName: string): Locator | null | undefined {
  if (!table) return undefined;
  for (const [pattern, locator] of Object.entries(table.taps)) {
    const re = new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\/]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`)).replace('{i}', '(\\d+)')}$`);
    const m = re.exec(tapName);
    if (!m) continue;
    if (!locator) return null;
    const fill = (s: string) => (m[1] === undefined ? s : s.replaceAll('{i}', m[1]));
    if ('scope' in locator) return { scope: fill(locator.scope) };
    if ('node' in locator) return { ...locator, node: fill(locator.node) };
    return { output: fill(locator.output) };
  }
  return undefined;
}
