// Linear: y = x W^T + b over the last dim, as torch.nn.Linear.

import { Tensor } from '../tensor/tensor.js';
import { linear as linearOp } from '../ops/linear.js';
import { FactoryOptions, uniformTensor } from './init.js';
import { Module, parameter } from './module.js';

export interface LinearOptions extends FactoryOptions {
  /** Adds the learnable bias b (default true). */
  bias?: boolean;
}

/**
 * Applies y = x W^T + b to the last dim of x ([..., inFeatures] to [..., outFeatures]). weight is
 * [outFeatures, inFeatures]; weight and bias start from U(-1/sqrt(inFeatures), 1/sqrt(inFeatures)) as in torch.
 */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: LinearOptions = {}) {
    super();
    checkFeatures('Linear', { inFeatures, outFeatures });
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.weight = parameter(uniformTensor([outFeatures, inFeatures], bound, options));
    this.bias = (options.bias ?? true) ? parameter(uniformTensor([outFeatures], bound, options)) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** Checks that each named size is a non-negative integer. */
export function checkFeatures(op: string, sizes: Record<string, number>): void {
  for (const [name, value] of Object.entries(sizes)) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`${op}: ${name} must be a non-negative integer, got ${value}`);
  }
}

/** y = x W^T + b, as torch.nn.functional.linear: x is [..., inFeatures], weight [outFeatures, inFeatures]. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return linearOp(x, weight, bias);
}
