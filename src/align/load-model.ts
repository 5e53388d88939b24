/**
 * From a model and a checkpoint to its parameters: the weight map comes from the model's family
 * and the checkpoint's format (src/families/registry.ts), and a checkpoint that does not fit is
 * refused unless told otherwise.
 */
import { weightMapFor } from '../families/registry.ts';
import type { Model } from '../models/model.ts';
import { ParamStore } from '../models/params.ts';
import { unionCheckpoint, type Checkpoint } from '../weightmap/checkpoint.ts';
import { requireComplete, streamWeightMap, type MapReport } from '../weightmap/map.ts';
import { openCheckpoint } from '../weightmap/readers/detect.ts';

export interface LoadedModel {
  model: Model;
  params: ParamStore;
  report: MapReport;
  checkpoint: Checkpoint;
}

export interface LoadOptions {
  /** Accept unmapped, missing or mismatched tensors (missing ones then fail at first use). */
  allowIncomplete?: boolean;
}

/** `checkpointPath`: one checkpoint, or several files that together hold it (T5's encoder.onnx and decoder.onnx). */
export function loadParams(model: Model, checkpointPath: string | readonly string[], options: LoadOptions = {}): LoadedModel {
  const checkpoint = typeof checkpointPath === 'string' ? openCheckpoint(checkpointPath) : unionCheckpoint(checkpointPath.map((p) => openCheckpoint(p)));
  const map = weightMapFor(model, checkpoint.format);
  const heads = (model.config as { heads?: number }).heads;
  // Each value is uploaded as soon as it is mapped and its host copy dropped (one tensor at a time).
  let report: MapReport | undefined;
  const params = new ParamStore(model.specs, (put) => {
    report = streamWeightMap(checkpoint, map, model.specs, put, { heads });
    if (!options.allowIncomplete) requireComplete(report, checkpoint.path, map.name);
  }, { partial: options.allowIncomplete });
  return { model, params, report: report!, checkpoint };
}
