// fusegrad's public API: import * as fg from 'fusegrad'.

import { tidy as tidyScope, keep } from './tensor/scope.js';
import { Tensor, isTensor } from './tensor/tensor.js';

export { Tensor, isTensor };
export type { TensorOrScalar, NestedArray } from './tensor/tensor.js';
export type { DType } from './tensor/dtype.js';
export type { DeviceName, MemoryStats } from './backends/backend.js';
export { init, backend, synchronize, shutdown, manualSeed, memory, noGrad, isGradEnabled, hasWebGpu } from './runtime.js';
export type { InitOptions } from './runtime.js';
export {
  tensor, zeros, ones, full, zerosLike, onesLike, arange, randn, rand, randint,
  add, sub, mul, div, pow, neg, exp, log, sqrt, rsqrt, abs, tanh, sigmoid, relu, clamp, maximum, minimum,
  eq, ne, lt, le, gt, ge, where, maskedFill, logicalNot,
  sum, mean, amax, amin, variance as var, argmax, argmin,
  reshape, view, transpose, permute, squeeze, unsqueeze, expand, contiguous, flatten, slice, narrow, split, chunk,
  cat, stack, indexSelect, gather, matmul, clone,
} from './ops/index.js';
export type { TensorOptions, FromDataOptions } from './ops/creation.js';
export { gradcheck } from './autograd/gradcheck.js';
export type { GradcheckOptions, GradcheckResult } from './autograd/gradcheck.js';
export { GRADCHECK_DEFAULTS } from './autograd/gradcheck.js';
export { registeredOps } from './ops/registry.js';
export type { OpEntry, OpSample, SampleArg } from './ops/registry.js';
export * as nn from './nn/index.js';
export { keep };

/**
 * Runs `fn` and releases every tensor it created except those it returns (a tensor, or arrays and plain
 * objects of tensors), as tf.tidy. `fn` must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  return tidyScope(fn, isTensor);
}
export * as optim from './optim/index.js';
export * as io from './io/index.js';
export { save, load, loadOptimizerState } from './io/checkpoint.js';
export type { SaveOptions, LoadOptions } from './io/checkpoint.js';
export { scaledMaskedSoftmax } from './ops/attention-softmax.js';
export type { ScaledMaskedSoftmaxOptions } from './ops/attention-softmax.js';
