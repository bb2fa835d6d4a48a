// nn.Module: the base of every layer. Parameters and submodules are found from the object's own fields,
// in declaration order, so a layer only assigns them in its constructor, as in PyTorch.

import { moveToDeviceSync } from '../io/transfer.js';
import { noGrad } from '../runtime.js';
import { keep } from '../tensor/scope.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export type StateDict = Record<string, Tensor>;

export interface LoadStateDictOptions {
  /** Require the keys to match exactly (default true). */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/**
 * Marks a tensor as a trainable parameter: a leaf that requires grad and that no enclosing tidy() scope
 * releases, so a module may be built inside tidy(). Returns the same tensor.
 */
export function parameter(t: Tensor): Tensor {
  if (!t.isLeaf) throw new Error('parameter: a parameter must be a leaf tensor; create it directly or detach() it first');
  return keep(t.requiresGrad_(true));
}

export abstract class Module {
  training = true;

  /** Runs the layer. Subclasses define their own signature. */
  abstract forward(...inputs: unknown[]): unknown;

  /** Direct submodules with their field names; a module in an array field is named `field.index`. */
  *namedChildren(): Generator<[string, Module]> {
    for (const [key, value] of ownEntries(this)) {
      if (value instanceof Module) yield [key, value];
    }
  }

  /** Yields this module (named `prefix`) and every submodule below it with its dotted name, each once. */
  *namedModules(prefix = '', seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [key, child] of this.namedChildren()) {
      yield* child.namedModules(prefix ? `${prefix}.${key}` : key, seen);
    }
  }

  *modules(): Generator<Module> {
    for (const [, module] of this.namedModules()) yield module;
  }

  *children(): Generator<Module> {
    for (const [, child] of this.namedChildren()) yield child;
  }

  /** Lists every parameter with its dotted name, such as `blocks.0.attn.outProj.weight`, without duplicates. */
  namedParameters(prefix = '', seen = new Set<Tensor>()): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [key, value] of ownEntries(this)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (value instanceof Tensor && value.isLeaf && value.requiresGrad) {
        if (!seen.has(value)) {
          seen.add(value);
          out.push([name, value]);
        }
      } else if (value instanceof Module) {
        out.push(...value.namedParameters(name, seen));
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Sets training mode on this module and every submodule; returns this. */
  train(mode = true): this {
    this.training = mode;
    for (const child of this.children()) child.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears the gradient of every parameter (sets it to null, as PyTorch's set_to_none default). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Returns the parameters by dotted name. The tensors are the live parameters, not copies. */
  stateDict(): StateDict {
    return Object.fromEntries(this.namedParameters());
  }

  /**
   * Copies values into the parameters by name. With strict (the default), missing and unexpected keys are
   * an error; a shape mismatch is always an error. Values on the CPU may be loaded into a model on any
   * device. Nothing is changed when an error is thrown.
   */
  loadStateDict(dict: StateDict, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const own = new Map(this.namedParameters());
    const missingKeys = [...own.keys()].filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missingKeys.length > 0) problems.push(`missing keys: ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length > 0) problems.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    for (const [name, param] of own) {
      const value = dict[name];
      if (!value) continue;
      if (!(value instanceof Tensor)) {
        problems.push(`${name} is not a Tensor`);
      } else if (value.shape.length !== param.shape.length || value.shape.some((d, i) => d !== param.shape[i])) {
        problems.push(`shape mismatch for ${name}: checkpoint ${formatShape(value.shape)}, model ${formatShape(param.shape)}`);
      } else if (value.device !== param.device && value.device !== 'cpu') {
        problems.push(`${name} is on '${value.device}' but the model is on '${param.device}'; load the checkpoint with fg.load(path, { device: '${param.device}' })`);
      }
    }
    if (problems.length > 0) {
      throw new Error(`loadStateDict: ${problems.join('; ')}`);
    }
    noGrad(() => {
      for (const [name, param] of own) {
        const value = dict[name];
        if (!value || value === param) continue;
        if (value.device === param.device) {
          param.copy_(value);
          continue;
        }
        // A CPU value is already on the host, so it uploads without a readback.
        const moved = moveToDeviceSync('loadStateDict', value, param.device);
        param.copy_(moved);
        moved.dispose();
      }
    });
    return { missingKeys, unexpectedKeys };
  }
}

/** Lists the fields of a module in declaration order, with the modules of an array field listed as `field.index`. */
function* ownEntries(module: Module): Generator<[string, unknown]> {
  for (const [key, value] of Object.entries(module)) {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) {
        if (item instanceof Module) yield [`${key}.${i}`, item];
      }
    } else {
      yield [key, value];
    }
  }
}
