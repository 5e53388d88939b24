/** Forward runs of a baseline suite against its ONNX export (run live) or its stored PyTorch forward. */
import type { ForwardRun } from '../../src/align/forward-check.ts';
import { BASELINES } from './backend.ts';

const f = (suite: string, file: string) => `${BASELINES}${suite}/${file}`;

/** The export's files in run order: T5's encoder, then its decoder. */
export const onnxFiles = (suite: string) => (suite === 't5' ? [f(suite, 'encoder.onnx'), f(suite, 'decoder.onnx')] : [f(suite, 'model.onnx')]);
/** Our weights from the export itself, against the export run by onnxruntime. */
export const onnxRun = (suite: string): ForwardRun => ({ label: 'initial', weightsPath: onnxFiles(suite), onnx: onnxFiles(suite) });
export const storedRun = (suite: string): ForwardRun => ({ label: 'initial', weightsPath: f(suite, 'model.safetensors'), referencePath: f(suite, 'forward_initial.safetensors') });
