// Linear: y = x W^T + b over the last dim, as torch.nn.Linear.

import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { checkTensor } from '../ops/util.js';
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

/**
 * y = x W^T + b, as torch.nn.functional.linear. Leading dims are flattened into one before the matmul, so
 * the weight's gradient is one matmul instead of a batch of them summed afterwards.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  checkTensor('linear', x);
  checkTensor('linear', weight, 'weight');
  if (weight.shape.length !== 2) throw new Error(`linear: weight must be 2-D [outFeatures, inFeatures], got shape ${formatShape(weight.shape)}`);
  const [outFeatures, inFeatures] = weight.shape;
  if (x.shape.length === 0 || x.shape[x.shape.length - 1] !== inFeatures) {
    throw new Error(`linear: input of shape ${formatShape(x.shape)} does not end in inFeatures ${inFeatures} (weight shape ${formatShape(weight.shape)})`);
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== outFeatures)) {
    throw new Error(`linear: bias must have shape [${outFeatures}], got ${formatShape(bias.shape)}`);
  }
  const rows = x.shape.length > 2 ? x.reshape([-1, inFeatures]) : x;
  const wt = weight.t();
  const product = rows.matmul(wt);
  wt.dispose();
  if (rows !== x) rows.dispose();
  let y = product;
  if (bias) {
    y = product.add(bias);
    product.dispose();
  }
  if (x.shape.length <= 2) return y;
  const out = y.reshape([...x.shape.slice(0, -1), outFeatures]);
  y.dispose();
  return out;
}
