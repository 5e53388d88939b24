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

  /**
   * `values`: every spec's name with exactly numel(shape) floats (the loader checks), or a function
   * that puts them one at a time — then the host copy of each can go as soon as it is uploaded, so
   * loading never holds the whole model twice.
   */
  constructor(
    specs: readonly ParamSpec[],
    values: ReadonlyMap<string, Float32Array> | ((put: (name: string, data: Float32Array) => void) => void),
    /** Keep only the specs that got a value (the others then fail at first use) instead of refusing. */
    options: { partial?: boolean } = {},
  ) {
    const shapes = new Map(specs.map((s) => [s.name, s.shape]));
    const put = (name: string, data: Float32Array) => {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`unknown parameter ${name}`);
      this.vars.get(name)?.dispose();
      // The variable shares the tensor's storage; dropping the tensor keeps only the variable's reference.
      const initial = tf.tensor(data, shape, 'float32');
      this.vars.set(name, tf.variable(initial, true, name.replace(/[^\w.]/g, '_') + '_' + uid()));
      initial.dispose();
    };
    try {
      if (typeof values === 'function') values(put);
      else for (const spec of specs) if (values.has(spec.name)) put(spec.name, values.get(spec.name)!);
      const absent = specs.find((s) => !this.vars.has(s.name));
      if (absent && !options.partial) throw new Error(`no value for parameter ${absent.name}`);
    } catch (error) {
      this.dispose();
      throw error;
    }
    this.specs = options.partial ? specs.filter((s) => this.vars.has(s.name)) : specs;
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
