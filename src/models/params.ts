/**
 * Parameters live in one store under our own canonical names (one layout per model family);
 * foreign names exist only in weightmap/maps. Layers receive tensors, never the store.
 */
import { tf, type Tensor, type Variable } from '../backend/tf.ts';

export interface ParamSpec {
  name: string;
  shape: number[];
}

export type ParamLookup = (name: string) => Tensor;

export class ParamStore {
  readonly specs: readonly ParamSpec[];
  private readonly vars = new Map<string, Variable>();

  /** `values` must hold every spec's name with exactly numel(shape) floats (the loader checks). */
  constructor(specs: readonly ParamSpec[], values: ReadonlyMap<string, Float32Array>) {
    this.specs = specs;
    for (const spec of specs) {
      const data = values.get(spec.name);
      if (!data) throw new Error(`no value for parameter ${spec.name}`);
      // The variable shares the tensor's storage; dropping the tensor keeps only the variable's reference.
      const initial = tf.tensor(data, spec.shape, 'float32');
      this.vars.set(spec.name, tf.variable(initial, true, spec.name.replace(/[^\w.]/g, '_') + '_' + uid()));
      initial.dispose();
    }
  }

  readonly get: ParamLookup = (name) => {
    const v = this.vars.get(name);
    if (!v) throw new Error(`unknown parameter ${name}`);
    return v;
  };

  variable(name: string): Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`unknown parameter ${name}`);
    return v;
  }

  variables(): Variable[] {
    return this.specs.map((s) => this.variable(s.name));
  }

  /** Current values, copied out (awaited: a GPU backend reads asynchronously). */
  async snapshot(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const spec of this.specs) out.set(spec.name, Float32Array.from((await this.variable(spec.name).data()) as Float32Array));
    return out;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

let counter = 0;
function uid(): number {
  return counter++;
}
