/**
 * ViT (HF ViTForImageClassification, transformers 4.33): patch embedding, [CLS] and learned
 * positions, pre-LN encoder, final LayerNorm, classifier on [CLS]; single-label classification.
 */
import { InputError } from '../errors.ts';
import type { JsonObject } from '../json-file.ts';
import { vitModel, type VitConfig } from '../models/vit.ts';
import { hfVitMap } from '../weightmap/maps/hf-vit.ts';
import { family } from './family.ts';
import { ConfigReader } from './hf-config.ts';

/** HF accepts an int or a [height, width] pair for image_size and patch_size. */
function pair(c: ConfigReader, key: string, fallback: number): [number, number] {
  const v = c.json[key] ?? fallback;
  if (Array.isArray(v) && v.length === 2) {
    return [new ConfigReader({ [key]: v[0] }, c.file).positive(key), new ConfigReader({ [key]: v[1] }, c.file).positive(key)];
  }
  const n = c.positive(key, fallback);
  return [n, n];
}

function configFromHf(json: JsonObject, file: string): VitConfig {
  const c = new ConfigReader(json, file);
  c.oneOf('model_type', ['vit'] as const);
  if (!c.bool('qkv_bias', true)) throw new InputError('qkv_bias false is not supported', { file, tensor: 'qkv_bias', expected: 'true', actual: 'false' });
  // PretrainedConfig: num_labels is the size of id2label when one is written, else num_labels, else 2.
  const id2label = json.id2label;
  const numLabels = id2label && typeof id2label === 'object' ? Object.keys(id2label).length : c.positive('num_labels', 2);
  // HF's loss follows problem_type; unset, it is single-label for more than one label and integer labels.
  const problem = c.has('problem_type') ? c.oneOf('problem_type', ['single_label_classification'] as const) : 'single_label_classification';
  if (numLabels < 2) throw new InputError('a single label means regression, which is not supported', { file, tensor: 'id2label', expected: `≥ 2 labels for ${problem}`, actual: String(numLabels) });
  const imageSize = pair(c, 'image_size', 224);
  const patchSize = pair(c, 'patch_size', 16);
  if (imageSize[0] % patchSize[0] !== 0 || imageSize[1] % patchSize[1] !== 0) {
    throw new InputError('image_size must be a whole number of patches', { file, tensor: 'image_size', expected: `a multiple of patch_size ${patchSize.join('×')}`, actual: imageSize.join('×') });
  }
  const config: VitConfig = {
    imageSize,
    patchSize,
    channels: c.positive('num_channels', 3),
    hidden: c.positive('hidden_size', 768),
    layers: c.int('num_hidden_layers', 12),
    heads: c.positive('num_attention_heads', 12),
    intermediate: c.positive('intermediate_size', 3072),
    layerNormEps: c.float('layer_norm_eps', 1e-12),
    activation: c.activation('hidden_act', 'gelu'),
    numLabels,
  };
  c.requireDivisible('hidden_size', config.hidden, config.heads, 'num_attention_heads');
  return config;
}

export const vit = family<VitConfig>({
  name: 'vit',
  arch: 'vit',
  modelTypes: ['vit'],
  configFromHf,
  build: vitModel,
  hfMap: () => hfVitMap,
});
