// Tensor creation: from JavaScript data, constants, ranges and the seeded random generator.

import type { DeviceName } from '../backends/backend.js';
import { backend as defaultDevice, getBackend, random } from '../runtime.js';
import { DType, TypedArray, checkDType, hostArray, isFloating, toHostArray } from '../tensor/dtype.js';
import { checkShape, formatShape, numel } from '../tensor/shape.js';
import { NestedArray, Tensor } from '../tensor/tensor.js';
import { checkDTypeOnDevice } from './util.js';
import { copyInto } from './shape.js';

export interface TensorOptions {
  dtype?: DType;
  device?: DeviceName;
  requiresGrad?: boolean;
}

export interface FromDataOptions extends TensorOptions {
  /** The shape of flat or typed-array data; nested arrays give their own. */
  shape?: number[];
}

type Data = NestedArray | TypedArray | readonly number[];

function inferNested(op: string, data: NestedArray, shape: number[], flat: (number | boolean)[], depth: number): void {
  if (!Array.isArray(data)) {
    if (typeof data !== 'number' && typeof data !== 'boolean') {
      throw new TypeError(`${op}: expected numbers or booleans, found ${typeof data} at depth ${depth}`);
    }
    if (depth !== shape.length && shape.length > 0) throw new Error(`${op}: nested arrays are ragged (a number at depth ${depth}, arrays of depth ${shape.length} elsewhere)`);
    flat.push(data);
    return;
  }
  if (depth === shape.length) shape.push(data.length);
  else if (shape[depth] !== data.length) {
    throw new Error(`${op}: nested arrays are ragged: expected length ${shape[depth]} at depth ${depth}, found ${data.length}`);
  }
  for (const item of data) inferNested(op, item, shape, flat, depth + 1);
}

function defaultDType(values: ArrayLike<number | boolean>, data: Data): DType {
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'bool';
  if (data instanceof Float64Array) return 'float32';
  if (values.length > 0 && Array.from(values).every((v) => typeof v === 'boolean')) return 'bool';
  return 'float32';
}

/** Makes a leaf tensor, finishing the checks every creation function shares. */
function finish(op: string, storageTensor: Tensor, options: TensorOptions): Tensor {
  if (options.requiresGrad) {
    if (!isFloating(storageTensor.dtype)) {
      storageTensor.dispose();
      throw new TypeError(`${op}: only floating-point tensors can require grad, but the dtype is ${storageTensor.dtype}`);
    }
    storageTensor.requiresGrad = true;
  }
  return storageTensor;
}

function resolve(op: string, options: TensorOptions, fallback: DType): { dtype: DType; device: DeviceName } {
  const dtype = options.dtype === undefined ? fallback : checkDType(op, options.dtype);
  const device = options.device ?? defaultDevice();
  checkDTypeOnDevice(op, dtype, device);
  return { dtype, device };
}

function fromHost(op: string, values: ArrayLike<number | boolean>, shape: number[], options: TensorOptions, fallback: DType): Tensor {
  const { dtype, device } = resolve(op, options, fallback);
  const host = toHostArray(dtype, values);
  const out = Tensor.fromStorage(getBackend(device).upload(dtype, host), shape);
  return finish(op, out, options);
}

/** Creates a tensor from nested arrays, a flat array with `shape`, a typed array or a number, as torch.tensor. */
export function tensor(data: Data, options: FromDataOptions = {}): Tensor {
  let values: ArrayLike<number | boolean>;
  let shape: number[];
  if (ArrayBuffer.isView(data)) {
    values = data as TypedArray;
    shape = options.shape ? checkShape('tensor', options.shape) : [data.length];
  } else if (Array.isArray(data) || typeof data === 'number' || typeof data === 'boolean') {
    const flat: (number | boolean)[] = [];
    const nestedShape: number[] = [];
    inferNested('tensor', data as NestedArray, nestedShape, flat, 0);
    values = flat;
    shape = options.shape ? checkShape('tensor', options.shape) : nestedShape;
  } else {
    throw new TypeError(`tensor: data must be a number, a nested array or a typed array, got ${data === null ? 'null' : typeof data}`);
  }
  if (numel(shape) !== values.length) {
    throw new Error(`tensor: shape ${formatShape(shape)} needs ${numel(shape)} values, but the data has ${values.length}`);
  }
  return fromHost('tensor', values, shape, options, defaultDType(values, data));
}

/** Creates a tensor of `shape` filled with `value`. */
export function full(shape: readonly number[], value: number | boolean, options: TensorOptions = {}): Tensor {
  const checked = checkShape('full', shape);
  if (typeof value !== 'number' && typeof value !== 'boolean') throw new TypeError(`full: value must be a number, got ${typeof value}`);
  const fallback: DType = typeof value === 'boolean' ? 'bool' : 'float32';
  const { dtype, device } = resolve('full', options, fallback);
  const out = Tensor.fromStorage(getBackend(device).allocate(dtype, numel(checked)), checked);
  copyInto('full', out, Number(value));
  return finish('full', out, options);
}

export function zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}

export function zerosLike(x: Tensor, options: TensorOptions = {}): Tensor {
  return full([...x.shape], 0, { dtype: x.dtype, device: x.device, ...options });
}

export function onesLike(x: Tensor, options: TensorOptions = {}): Tensor {
  return full([...x.shape], 1, { dtype: x.dtype, device: x.device, ...options });
}

/** Values from start (inclusive) to end (exclusive) in steps, as torch.arange; int32 when all are integers. */
export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new RangeError(`arange: step must be a finite non-zero number, got ${step}`);
  const count = Math.max(0, Math.ceil((end - start) / step));
  const values = Array.from({ length: count }, (_, i) => start + i * step);
  const integral = [start, end, step].every(Number.isInteger);
  return fromHost('arange', values, [count], options, integral ? 'int32' : 'float32');
}

function randomTensor(op: string, shape: readonly number[], options: TensorOptions, sample: () => number, fallback: DType = 'float32'): Tensor {
  const checked = checkShape(op, shape);
  const n = numel(checked);
  const values = hostArray('float64', n);
  for (let i = 0; i < n; i++) values[i] = sample();
  return fromHost(op, values, checked, options, fallback);
}

/** Samples from the standard normal distribution (Box-Muller on the seeded generator). */
export function randn(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return randomTensor('randn', shape, options, normalSample);
}

export function normalSample(): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Samples uniformly from [0, 1). */
export function rand(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return randomTensor('rand', shape, options, random);
}

/** Samples integers uniformly from [low, high), as torch.randint; int32 by default. */
export function randint(low: number, high: number, shape: readonly number[], options: TensorOptions = {}): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
    throw new RangeError(`randint: expects integers low < high, got low ${low} and high ${high}`);
  }
  return randomTensor('randint', shape, options, () => low + Math.floor(random() * (high - low)), 'int32');
}
