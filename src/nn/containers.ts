// Containers: Sequential runs its modules in order, and ModuleList keeps modules for the caller to run.
// Both store their modules in fields named 0, 1, ..., so parameter names read `blocks.0.attn.outProj.weight`
// as in PyTorch.

import { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

function checkModule<T extends Module>(op: string, value: T, index: number): T {
  if (!(value instanceof Module)) {
    throw new TypeError(`${op}: item ${index} must be an nn.Module, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

/** Modules under the indices 0 to length - 1, shared by Sequential and ModuleList. */
abstract class IndexedModules<T extends Module> extends Module {
  [index: number]: T;
  private count = 0;

  protected constructor(op: string, modules: Iterable<T>) {
    super();
    for (const module of modules) this.push(op, module);
  }

  get length(): number {
    return this.count;
  }

  /** Returns the module at `index`. A negative index counts from the end, as in Python. */
  get(index: number): T {
    const i = index < 0 ? index + this.count : index;
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new RangeError(`${this.constructor.name}: index ${index} is out of range for ${this.count} modules`);
    }
    return this[i];
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.count; i++) yield this[i];
  }

  protected push(op: string, module: T): void {
    this[this.count] = checkModule(op, module, this.count);
    this.count++;
  }
}

/** Runs modules one after another, each on the output of the previous one, as torch.nn.Sequential. */
export class Sequential extends IndexedModules<Module> {
  constructor(...modules: Module[]) {
    super('Sequential', modules);
  }

  append(module: Module): this {
    this.push('Sequential.append', module);
    return this;
  }

  forward(input: Tensor): Tensor {
    let x = input;
    for (const module of this) {
      const y = module.forward(x);
      if (!(y instanceof Tensor)) {
        throw new TypeError(`Sequential: ${module.constructor.name}.forward returned ${typeof y}, not a Tensor; Sequential passes one tensor from module to module`);
      }
      // The handles between two modules belong to Sequential; the graph keeps its own references.
      if (x !== input && x !== y) x.dispose();
      x = y;
    }
    return x;
  }
}

/**
 * Keeps submodules so that their parameters are found and named by index, as torch.nn.ModuleList. The type
 * parameter is the common type of the modules, inferred from the constructor's argument.
 */
export class ModuleList<T extends Module = Module> extends IndexedModules<T> {
  constructor(modules: Iterable<T> = []) {
    super('ModuleList', modules);
  }

  append(module: T): this {
    this.push('ModuleList.append', module);
    return this;
  }

  extend(modules: Iterable<T>): this {
    for (const module of modules) this.append(module);
    return this;
  }

  forward(): never {
    throw new Error('ModuleList: a ModuleList has no forward(); iterate over it and call each module yourself');
  }
}
