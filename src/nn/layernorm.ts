// nn.LayerNorm: the module form of the fused layerNorm op, with torch.nn.LayerNorm's options.

import type { DeviceName } from '../backends/backend.js';
import { full } from '../ops/creation.js';
import { layerNorm } from '../ops/layernorm.js';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, parameter } from './module.js';

export interface LayerNormOptions {
  eps?: number;
  /** Whether to learn a per-element weight (initialized to ones) and bias (zeros). False means no parameters at all. */
  elementwiseAffine?: boolean;
  /** Whether to learn the bias too, with elementwiseAffine. False leaves `bias` null. */
  bias?: boolean;
  dtype?: DType;
  device?: DeviceName;
}

export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new TypeError(`LayerNorm: normalizedShape must be a positive integer or a non-empty array of positive integers, got ${JSON.stringify(normalizedShape)}`);
    }
    const eps = options.eps ?? 1e-5;
    if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw new RangeError(`LayerNorm: eps must be a finite number >= 0, got ${eps}`);
    this.normalizedShape = [...shape];
    this.eps = eps;
    this.elementwiseAffine = options.elementwiseAffine ?? true;
    const factory = { dtype: options.dtype, device: options.device };
    this.weight = this.elementwiseAffine ? parameter(full(this.normalizedShape, 1, factory)) : null;
    this.bias = this.elementwiseAffine && (options.bias ?? true) ? parameter(full(this.normalizedShape, 0, factory)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}
