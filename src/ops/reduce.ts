// Reductions over one dim, a list of dims or all of them, with keepdim as in PyTorch.

import type { ReduceOp } from '../backends/backend.js';
import { getBackend } from '../runtime.js';
import { isFloating } from '../tensor/dtype.js';
import { normalizeDims, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, mapOp } from './elementwise.js';
import { arg, registerOp } from './registry.js';
import { checkTensor } from './util.js';

/** Permutes the reduced dims to the end and runs the backend reduction; returns the kept shape too. */
function reduceRaw(op: string, kind: ReduceOp, x: Tensor, dims: number[], keepdim: boolean): Tensor {
  const rank = x.shape.length;
  const kept = [...Array(rank).keys()].filter((d) => !dims.includes(d));
  const order = [...kept, ...dims];
  const view = x.asView(op);
  const permuted = { ...view, shape: order.map((d) => x.shape[d]), strides: order.map((d) => x.strides[d]) };
  let inputDType = x.dtype;
  let source = permuted;
  let temp: Tensor | null = null;
  if (x.dtype === 'bool' && kind === 'sum') {
    temp = x.to('int32');
    const tv = temp.asView(op);
    source = { ...tv, shape: permuted.shape, strides: order.map((d) => temp!.strides[d]) };
    inputDType = 'int32';
  }
  const outDType = kind === 'argmax' || kind === 'argmin' ? 'int32' : inputDType;
  const storage = getBackend(x.device).reduce(kind, source, dims.length, outDType);
  temp?.dispose();
  const outShape = keepdim ? x.shape.map((d, i) => (dims.includes(i) ? 1 : d)) : kept.map((d) => x.shape[d]);
  return Tensor.fromStorage(storage, outShape);
}

/** Broadcasts a reduced gradient back over the reduced dims. */
function expandBack(g: Tensor, shape: readonly number[], dims: number[], keepdim: boolean): Tensor {
  const withOnes = shape.map((d, i) => (dims.includes(i) ? 1 : d));
  const reshaped = keepdim ? g.detach() : g.reshape(withOnes);
  const out = reshaped.expand([...shape]);
  reshaped.dispose();
  return out;
}

export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  checkTensor('sum', x);
  const dims = normalizeDims('sum', dim, x.shape.length);
  const y = reduceRaw('sum', 'sum', x, dims, keepdim);
  const shape = x.shape;
  return Tensor.record('sum', [x], y, (g) => [expandBack(g, shape, dims, keepdim)]);
}

export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  checkTensor('mean', x);
  if (!isFloating(x.dtype)) {
    throw new TypeError(`mean: input dtype ${x.dtype} is not floating point; convert it first with x.to('float32')`);
  }
  const dims = normalizeDims('mean', dim, x.shape.length);
  const count = numel(dims.map((d) => x.shape[d]));
  const total = reduceRaw('mean', 'sum', x, dims, keepdim);
  const y = mapOp('mean', K.mul, [total, 1 / count]);
  total.dispose();
  const shape = x.shape;
  return Tensor.record('mean', [x], y, (g) => {
    const expanded = expandBack(g, shape, dims, keepdim);
    const out = mapOp('mean', K.mul, [expanded, 1 / count]);
    expanded.dispose();
    return [out];
  });
}

function extremum(op: 'amax' | 'amin', x: Tensor, dim: number | number[] | undefined, keepdim: boolean): Tensor {
  checkTensor(op, x);
  if (x.numel === 0) throw new Error(`${op}: the input is empty, and a max or min of no elements is undefined`);
  const dims = normalizeDims(op, dim, x.shape.length);
  const y = reduceRaw(op, op === 'amax' ? 'max' : 'min', x, dims, keepdim);
  const shape = x.shape;
  // Gradient flows evenly to every element equal to the extremum, as torch.amax does.
  return Tensor.record(op, [x], y, (g, [input, out]) => {
    const outB = expandBack(out, shape, dims, keepdim);
    const gB = expandBack(g, shape, dims, keepdim);
    const mask = mapOp(op, K.eq, [input, outB]);
    const maskF = mask.to(g.dtype);
    const count = sum(maskF, dims, true);
    const share = mapOp(op, K.div, [maskF, count]);
    const grad = mapOp(op, K.mul, [gB, share]);
    for (const t of [outB, gB, mask, maskF, count, share]) t.dispose();
    return [grad];
  }, [x, y]);
}

export function amax(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  return extremum('amax', x, dim, keepdim);
}

export function amin(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  return extremum('amin', x, dim, keepdim);
}

export interface VarOptions {
  /** Bessel's correction (divide by n - 1); true by default as in torch.var. */
  unbiased?: boolean;
  /** Subtracted from n in the divisor; overrides `unbiased`. */
  correction?: number;
  keepdim?: boolean;
}

/** Variance over dims, computed in two passes (mean first), so large offsets lose no precision. */
export function variance(x: Tensor, dim?: number | number[], options: VarOptions = {}): Tensor {
  checkTensor('var', x);
  const dims = normalizeDims('var', dim, x.shape.length);
  const correction = options.correction ?? (options.unbiased === false ? 0 : 1);
  const n = numel(dims.map((d) => x.shape[d]));
  const mu = mean(x, dims, true);
  const centered = x.sub(mu);
  const squared = centered.mul(centered);
  const total = sum(squared, dims, options.keepdim ?? false);
  const out = total.div(Math.max(n - correction, 0));
  for (const t of [mu, centered, squared, total]) t.dispose();
  return out;
}

function argExtremum(op: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  checkTensor(op, x);
  if (x.numel === 0) throw new Error(`${op}: the input is empty, so it has no ${op === 'argmax' ? 'maximum' : 'minimum'}`);
  if (dim === undefined) {
    const flat = x.reshape([x.numel]);
    const out = reduceRaw(op, op, flat, [0], false);
    flat.dispose();
    return out;
  }
  const dims = normalizeDims(op, dim, x.shape.length);
  return reduceRaw(op, op, x, dims, keepdim);
}

export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argExtremum('argmax', x, dim, keepdim);
}

export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argExtremum('argmin', x, dim, keepdim);
}

registerOp('sum', [
  { label: 'all', args: [arg([3, 5])], run: (x) => x.sum() },
  { label: 'one dim keepdim', args: [arg([4, 6, 3])], run: (x) => x.sum(1, true) },
  { label: 'two dims', args: [arg([4, 6, 3])], run: (x) => x.sum([0, 2]) },
  { label: 'long rows', args: [arg([3, 700])], run: (x) => x.sum(-1) },
  { label: 'transposed', args: [arg([5, 130])], run: (x) => x.t().sum(0) },
  { label: 'first dim, rows past a workgroup', args: [arg([260, 8])], run: (x) => x.sum(0) },
  { label: 'first dim, odd sizes', args: [arg([301, 7])], run: (x) => x.sum(0, true) },
  { label: 'last dim, many rows', args: [arg([260, 9])], run: (x) => x.sum(-1) },
  { label: 'outer and inner dims', args: [arg([6, 130, 3])], run: (x) => x.sum([0, 2], true) },
  { label: 'middle dim', args: [arg([4, 130, 3])], run: (x) => x.sum(1) },
  { label: 'leading dims', args: [arg([5, 60, 8])], run: (x) => x.sum([0, 1]) },
  { label: 'narrowed view', args: [arg([150, 10])], run: (x) => x.narrow(1, 1, 8).sum(0) },
]);
registerOp('mean', [
  { label: 'all', args: [arg([7, 3])], run: (x) => x.mean() },
  { label: 'dims keepdim', args: [arg([2, 3, 65])], run: (x) => x.mean([0, 2], true) },
  { label: 'first dim keepdim', args: [arg([300, 4])], run: (x) => x.mean(0, true) },
]);
registerOp('amax', [
  { label: 'last dim', args: [arg([4, 9], 'distinct')], run: (x) => x.amax(-1) },
  { label: 'two dims keepdim', args: [arg([3, 4, 70], 'distinct')], run: (x) => x.amax([0, 2], true) },
  { label: 'first dim, rows past a workgroup', args: [arg([270, 8], 'distinct')], run: (x) => x.amax(0) },
]);
registerOp('amin', [
  { label: 'first dim', args: [arg([6, 5], 'distinct')], run: (x) => x.amin(0) },
  { label: 'all', args: [arg([3, 100], 'distinct')], run: (x) => x.amin() },
  { label: 'first dim, odd sizes', args: [arg([263, 5], 'distinct')], run: (x) => x.amin(0, true) },
]);
registerOp('var', [
  { label: 'unbiased', args: [arg([4, 10])], run: (x) => x.var(1) },
  { label: 'biased keepdim', args: [arg([3, 2, 80])], run: (x) => x.var([0, 2], { unbiased: false, keepdim: true }) },
]);
registerOp('argmax', [
  { label: 'dim', args: [arg([5, 9], 'distinct')], run: (x) => x.argmax(1) },
  { label: 'flat', args: [arg([3, 200], 'distinct')], run: (x) => x.argmax() },
], false);
registerOp('argmin', [
  { label: 'dim keepdim', args: [arg([5, 9], 'distinct')], run: (x) => x.argmin(0, true) },
], false);
