// The Optimizer base: parameter groups, per-parameter state, zeroGrad and state dicts in the layout of
// torch.optim.Optimizer (state by parameter index, groups with their hyperparameters and indices).

import { noGrad } from '../runtime.js';
import { formatShape } from '../tensor/shape.js';
import { keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { checkSyncMove, moveToDeviceSync } from '../io/transfer.js';

/** Hyperparameter values of a group: numbers and booleans (betas is stored as a pair). */
export type HyperValue = number | boolean | readonly [number, number];

/** A parameter group as given to a constructor: its parameters and any hyperparameters that override the defaults. */
export type ParamGroupInput<O> = { params: Iterable<Tensor> } & Partial<O>;

/** What an optimizer takes: an iterable of parameters, or a list of parameter groups. */
export type ParamsInput<O> = Iterable<Tensor> | ParamGroupInput<O>[];

export type ParamGroup<O> = { params: Tensor[] } & O;

/** One parameter's state: tensors (moments, buffers) and numbers (the step count). */
export type ParamState = Record<string, Tensor | number>;

/**
 * An optimizer's state as torch's state_dict: `state` by parameter index across all groups (in group
 * order), `paramGroups` with their hyperparameters and the indices of their parameters. The tensors are
 * the live state, not copies.
 */
export interface OptimizerStateDict {
  state: Record<string, ParamState>;
  paramGroups: SavedParamGroup[];
}

/** A parameter group in a state dict: its hyperparameters and the indices of its parameters. */
export interface SavedParamGroup {
  params: number[];
  [option: string]: HyperValue | number[];
}

function isGroupList<O>(params: ParamsInput<O>): params is ParamGroupInput<O>[] {
  return Array.isArray(params) && params.length > 0 && !(params[0] instanceof Tensor);
}

export abstract class Optimizer<O extends Record<keyof O, HyperValue>> {
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Per-parameter state, created at a parameter's first step. */
  readonly state = new Map<Tensor, ParamState>();

  /** The hyperparameters of groups that do not set their own. */
  readonly defaults: O;

  protected constructor(
    protected readonly name: string,
    params: ParamsInput<O>,
    builtIn: O,
    options: Partial<O>,
  ) {
    if (options === null || typeof options !== 'object') throw new TypeError(`${name}: options must be an object, got ${String(options)}`);
    checkKnownKeys(name, options, builtIn);
    this.defaults = { ...builtIn, ...options };
    const groups: ParamGroupInput<O>[] = isGroupList(params) ? params : [{ params } as ParamGroupInput<O>];
    for (const group of groups) this.addParamGroup(group);
    if (this.paramGroups.length === 0 || this.paramGroups.every((g) => g.params.length === 0)) {
      throw new Error(`${name}: got an empty parameter list; pass model.parameters() or a list of parameter groups`);
    }
  }

  /** Adds a group of parameters with its own hyperparameters (the defaults fill what it leaves out). */
  addParamGroup(group: ParamGroupInput<O>): void {
    if (group === null || typeof group !== 'object' || group.params === undefined || typeof group.params[Symbol.iterator] !== 'function') {
      throw new TypeError(`${this.name}: a parameter group must be an object with an iterable 'params' field`);
    }
    const params = [...group.params];
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new TypeError(`${this.name}: parameter ${i} of group ${this.paramGroups.length} is not a Tensor`);
      if (!p.isLeaf) throw new Error(`${this.name}: can only optimize leaf tensors, but parameter ${i} (shape ${formatShape(p.shape)}) was computed by an op; detach() it or create it directly`);
      if (!p.requiresGrad) throw new Error(`${this.name}: parameter ${i} (shape ${formatShape(p.shape)}) does not require grad; create it with { requiresGrad: true } or fg.nn.parameter()`);
      if (seen.has(p)) throw new Error(`${this.name}: parameter ${i} (shape ${formatShape(p.shape)}) appears in more than one group or twice in one`);
      seen.add(p);
    });
    const hyper = { ...this.defaults };
    const { params: _params, ...overrides } = group;
    checkKnownKeys(this.name, overrides, this.defaults);
    Object.assign(hyper, overrides);
    this.validate(hyper);
    this.paramGroups.push({ ...hyper, params });
  }

  /** Throws a clear error for invalid hyperparameters (a negative lr, betas outside [0, 1), ...). */
  protected abstract validate(hyper: O): void;

  /** Applies one update to every parameter of `group` that has a gradient. */
  protected abstract updateGroup(group: ParamGroup<O>, params: Tensor[]): void;

  /** Performs one optimization step on every parameter that has a gradient; the update runs on the parameters' device. */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        const params = group.params.filter((p) => p.grad !== null);
        for (const p of params) this.checkGrad(p);
        if (params.length > 0) this.updateGroup(group, params);
      }
    });
  }

  private checkGrad(p: Tensor): void {
    const grad = p.grad as Tensor;
    grad.assertAlive(`${this.name}.step`);
    p.assertAlive(`${this.name}.step`);
    if (grad.shape.length !== p.shape.length || grad.shape.some((d, i) => d !== p.shape[i])) {
      throw new Error(`${this.name}.step: a gradient of shape ${formatShape(grad.shape)} does not match its parameter's shape ${formatShape(p.shape)}`);
    }
    if (grad.device !== p.device) {
      throw new Error(`${this.name}.step: a gradient is on '${grad.device}' but its parameter is on '${p.device}'`);
    }
  }

  /** Clears the gradients of every parameter. With setToNone (the default, as in PyTorch) they become null; else zero. */
  zeroGrad(setToNone = true): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (!p.grad) continue;
        if (setToNone) {
          p.grad.dispose();
          p.grad = null;
        } else {
          noGrad(() => p.grad!.zero_());
        }
      }
    }
  }

  /** The optimizer's state and hyperparameters by parameter index; pass it to fg.save or loadStateDict. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((group) => {
      const { params, ...hyper } = group;
      const indices = params.map((p) => {
        index.set(p, index.size);
        return index.size - 1;
      });
      return { ...(hyper as Record<string, HyperValue>), params: indices };
    });
    const state: Record<string, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[String(i)] = { ...s };
    }
    return { state, paramGroups };
  }

  /**
   * Restores hyperparameters and state saved by stateDict(). Group and parameter counts must match;
   * state tensors are copied onto each parameter's device and dtype (from the CPU, synchronously).
   * Nothing changes when an error is thrown.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    const op = `${this.name}.loadStateDict`;
    if (dict === null || typeof dict !== 'object' || !Array.isArray(dict.paramGroups) || dict.state === null || typeof dict.state !== 'object') {
      throw new TypeError(`${op}: expected an object with 'state' and 'paramGroups', as stateDict() returns`);
    }
    if (dict.paramGroups.length !== this.paramGroups.length) {
      throw new Error(`${op}: the state has ${dict.paramGroups.length} parameter groups, but this optimizer has ${this.paramGroups.length}`);
    }
    const byIndex = new Map<number, Tensor>();
    const hypers = dict.paramGroups.map((saved, g) => {
      const own = this.paramGroups[g];
      if (!Array.isArray(saved.params) || saved.params.length !== own.params.length) {
        throw new Error(`${op}: group ${g} has ${saved.params?.length ?? 'no'} parameters in the state, but ${own.params.length} in this optimizer`);
      }
      saved.params.forEach((index, k) => byIndex.set(index, own.params[k]));
      const { params: _params, ...savedHyper } = saved;
      const ownKeys = Object.keys(this.defaults).sort().join(', ');
      const savedKeys = Object.keys(savedHyper).sort().join(', ');
      if (ownKeys !== savedKeys) {
        throw new Error(`${op}: group ${g} has options (${savedKeys}) but this optimizer expects (${ownKeys}); was the state saved by another optimizer type?`);
      }
      const hyper = savedHyper as unknown as O;
      this.validate(hyper);
      return hyper;
    });

    const restored = new Map<Tensor, ParamState>();
    for (const [key, saved] of Object.entries(dict.state)) {
      const param = byIndex.get(Number(key));
      if (param === undefined) throw new Error(`${op}: the state has an entry for parameter ${key}, which no group lists`);
      for (const [name, value] of Object.entries(saved)) {
        if (value instanceof Tensor && (value.shape.length !== param.shape.length || value.shape.some((d, i) => d !== param.shape[i]))) {
          throw new Error(`${op}: state '${name}' of parameter ${key} has shape ${formatShape(value.shape)}, but the parameter has shape ${formatShape(param.shape)}`);
        }
        if (!(value instanceof Tensor) && typeof value !== 'number') {
          throw new TypeError(`${op}: state '${name}' of parameter ${key} must be a Tensor or a number`);
        }
        if (value instanceof Tensor) checkSyncMove(op, value, param.device);
      }
      restored.set(param, saved);
    }

    const copies = new Map<Tensor, ParamState>();
    const run = () => {
      for (const [param, saved] of restored) {
        const copy: ParamState = {};
        for (const [name, value] of Object.entries(saved)) {
          copy[name] = value instanceof Tensor ? keep(moveToDeviceSync(op, value, param.device, param.dtype)) : value;
        }
        copies.set(param, copy);
      }
    };
    noGrad(run);

    for (const s of this.state.values()) disposeState(s);
    this.state.clear();
    for (const [param, s] of copies) this.state.set(param, s);
    hypers.forEach((hyper, g) => Object.assign(this.paramGroups[g], hyper));
  }
}

function disposeState(state: ParamState): void {
  for (const value of Object.values(state)) if (value instanceof Tensor) value.dispose();
}

// ---- shared option checks ----

function checkKnownKeys(op: string, options: object, known: object): void {
  for (const key of Object.keys(options)) {
    if (!(key in known)) throw new TypeError(`${op}: unknown option '${key}'; expected one of ${Object.keys(known).join(', ')}`);
  }
}

export function checkNonNegative(op: string, name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${op}: ${name} must be a finite number >= 0, got ${String(value)}`);
  }
}

export function checkBoolean(op: string, name: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new TypeError(`${op}: ${name} must be true or false, got ${String(value)}`);
}
