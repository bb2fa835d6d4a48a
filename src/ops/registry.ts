// The op registry: every differentiable op is declared once with sample inputs, and one test walks the
// registry to run gradcheck on the CPU backend and WebGPU-versus-CPU parity for each of them.

import type { Tensor } from '../tensor/tensor.js';

/** The fill of a sample input: `normal` values, `positive` ones (for log, sqrt), integer `index` values below `high`, and so on. */
export type SampleKind = 'normal' | 'positive' | 'awayFromZero' | 'index' | 'bool' | 'distinct';

export interface SampleArg {
  shape: number[];
  kind?: SampleKind;
  /** Exclusive upper bound of `index` values. */
  high?: number;
  /** Whether gradcheck differentiates this input; floating inputs default to true. */
  grad?: boolean;
}

export interface OpSample {
  label: string;
  args: SampleArg[];
  run: (...inputs: Tensor[]) => Tensor;
}

export interface OpEntry {
  name: string;
  samples: OpSample[];
  /** False for ops with no gradient (comparisons, argmax); they still get a parity test. */
  differentiable: boolean;
}

const registry = new Map<string, OpEntry>();

/** Declares an op with its sample inputs. An op without samples is an error, so no op skips its tests. */
export function registerOp(name: string, samples: OpSample[], differentiable = true): void {
  if (registry.has(name)) throw new Error(`registerOp: op '${name}' is registered twice`);
  registry.set(name, { name, samples, differentiable });
}

export function registeredOps(): OpEntry[] {
  return [...registry.values()];
}

/** Shorthand for a float input of a shape. */
export function arg(shape: number[], kind: SampleKind = 'normal', extra: Partial<SampleArg> = {}): SampleArg {
  return { shape, kind, ...extra };
}
