// fg.nn.init, as torch.nn.init: fills tensors in place from the seeded generator (fg.manualSeed), and the
// factory options that every layer takes to place its parameters.

import type { DeviceName } from '../backends/backend.js';
import { noGrad } from '../runtime.js';
import type { DType } from '../tensor/dtype.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { full, rand, randn } from '../ops/creation.js';

/** The dtype and device of a layer's parameters, as the `dtype` and `device` arguments of torch's layers. */
export interface FactoryOptions {
  dtype?: DType;
  device?: DeviceName;
}

/** Copies `value` into `t` without recording it, then releases `value`; returns `t`. */
function overwrite(t: Tensor, value: Tensor): Tensor {
  noGrad(() => t.copy_(value));
  value.dispose();
  return t;
}

/** Fills `t` with samples of U(low, high). */
export function uniform_(t: Tensor, low = 0, high = 1): Tensor {
  if (!(low <= high)) throw new RangeError(`uniform_: low ${low} must not exceed high ${high}`);
  const u = rand([...t.shape], { dtype: t.dtype, device: t.device });
  const scaled = noGrad(() => u.mul(high - low).add(low));
  u.dispose();
  return overwrite(t, scaled);
}

/** Fills `t` with samples of N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  if (!(std >= 0)) throw new RangeError(`normal_: std must be >= 0, got ${std}`);
  const z = randn([...t.shape], { dtype: t.dtype, device: t.device });
  const scaled = noGrad(() => z.mul(std).add(mean));
  z.dispose();
  return overwrite(t, scaled);
}

export function constant_(t: Tensor, value: number): Tensor {
  return overwrite(t, full([...t.shape], value, { dtype: t.dtype, device: t.device }));
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

/** fanIn and fanOut of a weight as torch counts them: dims 1 and 0, times the product of any further dims. */
export function calculateFanInAndFanOut(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.shape.length < 2) {
    throw new Error(`calculateFanInAndFanOut: needs a tensor with at least 2 dims, got shape ${formatShape(t.shape)}`);
  }
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

/** Glorot and Bengio (2010): U(-b, b) with b = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}

/**
 * He et al. (2015) for a leaky ReLU of slope `a`: U(-b, b) with b = sqrt(2 / (1 + a^2)) * sqrt(3 / fanIn).
 * With a = sqrt(5), as torch's Linear uses, b is 1 / sqrt(fanIn).
 */
export function kaimingUniform_(t: Tensor, a = 0): Tensor {
  const { fanIn } = calculateFanInAndFanOut(t);
  const bound = Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / fanIn);
  return uniform_(t, -bound, bound);
}

/** Creates a leaf of `shape` filled from U(-bound, bound), the initialization of most torch layers. */
export function uniformTensor(shape: readonly number[], bound: number, options: FactoryOptions = {}): Tensor {
  const u = rand(shape, options);
  const out = noGrad(() => u.mul(2 * bound).sub(bound));
  u.dispose();
  return out;
}
