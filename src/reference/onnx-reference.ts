/**
 * A forward reference made of one or more ONNX graphs run in order (T5: encoder.onnx, then
 * decoder.onnx). Each graph input is fed by name from the eval inputs or from an earlier graph's
 * outputs, with the names HF exporters give the encoder-decoder seam:
 *   encoder_hidden_states  <- encoder_last_hidden_state (the encoder graph's output)
 *   encoder_attention_mask <- attention_mask
 */
import { InputError } from '../errors.ts';
import type { OnnxGraph } from '../weightmap/readers/onnx-graph.ts';
import { DEFAULT_ORT_SETTINGS, OnnxModel, type FeedTensor, type HostTensor, type OrtSettings } from './onnx-runtime.ts';

export const FEED_ALIASES: Readonly<Record<string, string>> = {
  encoder_hidden_states: 'encoder_last_hidden_state',
  encoder_attention_mask: 'attention_mask',
};

export class OnnxReference {
  private constructor(readonly models: readonly OnnxModel[]) {}

  static open(files: readonly string[], settings: OrtSettings = DEFAULT_ORT_SETTINGS): OnnxReference {
    if (files.length === 0) throw new InputError('no ONNX file given for the reference', { expected: 'model.onnx, or encoder.onnx,decoder.onnx' });
    return new OnnxReference(files.map((f) => OnnxModel.open(f, settings)));
  }

  get graphs(): OnnxGraph[] {
    return this.models.map((m) => m.graph);
  }

  get files(): string[] {
    return this.models.map((m) => m.file);
  }

  /** Runs every graph on `inputs`; `extra[g]` are intermediate values to read from graph g. One map of float values per graph. */
  async run(inputs: Readonly<Record<string, FeedTensor>>, extra: ReadonlyArray<readonly string[]> = []): Promise<Array<Map<string, HostTensor>>> {
    const pool: Record<string, FeedTensor> = { ...inputs };
    const results: Array<Map<string, HostTensor>> = [];
    for (let g = 0; g < this.models.length; g++) {
      const model = this.models[g];
      const feeds: Record<string, FeedTensor> = {};
      for (const input of model.graph.inputs) {
        const source = pool[input.name] ?? pool[FEED_ALIASES[input.name] ?? ''];
        if (source) feeds[input.name] = source;
      }
      const values = await model.run(feeds, extra[g] ?? []);
      for (const o of model.graph.outputs) {
        const v = values.get(o.name);
        if (v && !(o.name in pool)) pool[o.name] = v;
      }
      results.push(values);
    }
    return results;
  }

  async release(): Promise<void> {
    for (const m of this.models) await m.release();
  }
}
