// The ops behind fg.nn.functional: softmax and logSoftmax (fused kernels), dropout, embedding and losses.

import { getBackend } from '../runtime.js';
import { isFloating } from '../tensor/dtype.js';
import { formatShape, normalizeDim } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { softmaxGrad } from './attention-softmax.js';
import { rand } from './creation.js';
import { K, gelu, mapOp } from './elementwise.js';
import { arg, registerOp } from './registry.js';
import { checkIndexRange, checkTensor, commonDevice } from './util.js';

export { gelu };

export function checkFloat(op: string, x: Tensor): void {
  checkTensor(op, x);
  if (!isFloating(x.dtype)) throw new TypeError(`${op}: expects a floating-point input, got ${x.dtype}; convert it with x.to('float32')`);
}

/** Runs the fused kernel over `dim` by viewing that dim as the last one. */
function softmaxRaw(op: string, x: Tensor, dim: number, log: boolean): Tensor {
  const d = normalizeDim(op, dim, x.shape.length);
  const last = Math.max(x.shape.length - 1, 0);
  const moved = x.shape.length === 0 ? x.reshape([1]) : x.transpose(d, last);
  const storage = getBackend(x.device).softmax(moved.asView(op), log);
  const computed = Tensor.fromStorage(storage, moved.shape);
  moved.dispose();
  if (x.shape.length === 0) {
    const out = computed.reshape([]);
    computed.dispose();
    return out;
  }
  const out = computed.transpose(d, last);
  computed.dispose();
  return out;
}

/** softmax(x)_i = exp(x_i - max) / sum_j exp(x_j - max) along `dim`; one kernel per call. */
export function softmax(x: Tensor, dim = -1): Tensor {
  checkFloat('softmax', x);
  const y = softmaxRaw('softmax', x, dim, false);
  const d = x.shape.length === 0 ? 0 : normalizeDim('softmax', dim, x.shape.length);
  // dx = y * (g - sum(g * y)), one kernel
  return Tensor.record('softmax', [x], y, (g, [out]) => [softmaxGrad(out, g, d, 1, false)], [y]);
}

/** log(softmax(x)) along `dim`, computed as x - max - log(sum exp(x - max)) so it stays finite. */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  checkFloat('logSoftmax', x);
  const y = softmaxRaw('logSoftmax', x, dim, true);
  const d = x.shape.length === 0 ? 0 : normalizeDim('logSoftmax', dim, x.shape.length);
  // dx = g - softmax * sum(g), one kernel
  return Tensor.record('logSoftmax', [x], y, (g, [out]) => [softmaxGrad(out, g, d, 1, true)], [y]);
}

/** Zeroes each element with probability p and scales the rest by 1 / (1 - p), from the seeded generator. */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  checkFloat('dropout', x);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`dropout: probability p must be between 0 and 1, got ${p}`);
  if (!training || p === 0) return x.mul(1);
  const noise = rand([...x.shape], { device: x.device, dtype: x.dtype });
  const keep = mapOp('dropout', K.ge, [noise, p]);
  const scale = p === 1 ? 0 : 1 / (1 - p);
  const mask = mapOp('dropout', K.mul, [keep, scale], { compute: x.dtype });
  noise.dispose();
  keep.dispose();
  const out = mul(x, mask);
  mask.dispose();
  return out;
}

function mul(a: Tensor, b: Tensor): Tensor {
  return a.mul(b);
}

export function checkIndexDType(op: string, indices: Tensor, label: string): void {
  checkTensor(op, indices, label);
  if (indices.dtype !== 'int32') {
    throw new TypeError(`${op}: ${label} must be an int32 tensor of indices, got ${indices.dtype}; create it with { dtype: 'int32' } or convert it with .to('int32')`);
  }
}

/** Looks up rows of `weight` ([numEmbeddings, dim]) for integer `indices` of any shape. */
export function embedding(indices: Tensor, weight: Tensor): Tensor {
  checkFloat('embedding', weight);
  if (weight.shape.length !== 2) throw new Error(`embedding: weight must be 2-D [numEmbeddings, embeddingDim], got shape ${formatShape(weight.shape)}`);
  checkIndexDType('embedding', indices, 'indices');
  commonDevice('embedding', [indices, weight]);
  checkIndexRange('embedding', indices, weight.shape[0], `numEmbeddings ${weight.shape[0]}`);
  const flat = indices.reshape([indices.numel]);
  const rows = weight.indexSelect(0, flat);
  flat.dispose();
  const out = rows.reshape([...indices.shape, weight.shape[1]]);
  rows.dispose();
  return out;
}

export type Reduction = 'mean' | 'sum' | 'none';

export function checkReduction(op: string, reduction: unknown): Reduction {
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new TypeError(`${op}: reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}`);
  }
  return reduction;
}

/** Mean squared error between input and target, as torch.nn.functional.mse_loss. */
export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  checkFloat('mseLoss', input);
  checkTensor('mseLoss', target, 'target');
  const reduction = checkReduction('mseLoss', options.reduction ?? 'mean');
  if (input.shape.length !== target.shape.length || input.shape.some((d, i) => d !== target.shape[i])) {
    throw new Error(`mseLoss: input ${formatShape(input.shape)} and target ${formatShape(target.shape)} must have the same shape`);
  }
  const diff = input.sub(target);
  const squared = diff.mul(diff);
  diff.dispose();
  if (reduction === 'none') return squared;
  const out = reduction === 'sum' ? squared.sum() : squared.mean();
  squared.dispose();
  return out;
}

registerOp('softmax', [
  { label: 'last dim', args: [arg([3, 7])], run: (x) => softmax(x) },
  { label: 'first dim', args: [arg([5, 4])], run: (x) => softmax(x, 0) },
  { label: 'wide rows', args: [arg([2, 600])], run: (x) => softmax(x.mul(4), -1) },
  // Enough rows to fill a workgroup: the WebGPU kernel then walks each row in one invocation.
  { label: 'many rows', args: [arg([260, 3])], run: (x) => softmax(x, -1) },
  { label: 'many strided rows', args: [arg([3, 260])], run: (x) => softmax(x, 0) },
  { label: 'many rows with -inf', args: [arg([260, 4])], run: (x) => softmax(x.maskedFill(x.gt(1.5), -Infinity), -1) },
]);
registerOp('logSoftmax', [
  { label: 'last dim', args: [arg([3, 7])], run: (x) => logSoftmax(x) },
  { label: 'middle dim', args: [arg([2, 5, 3])], run: (x) => logSoftmax(x, 1) },
  { label: 'many rows', args: [arg([260, 3])], run: (x) => logSoftmax(x, -1) },
]);
registerOp('mseLoss', [{ label: 'mean', args: [arg([4, 5]), arg([4, 5])], run: (a, b) => mseLoss(a, b) }]);
registerOp('embedding', [
  { label: 'repeated indices', args: [arg([3, 4], 'index', { high: 6 }), arg([6, 5])], run: (i, w) => embedding(i, w) },
  { label: 'indices past a workgroup', args: [arg([300], 'index', { high: 7 }), arg([7, 8])], run: (i, w) => embedding(i, w) },
  { label: 'many rows, odd width', args: [arg([5, 70], 'index', { high: 300 }), arg([300, 3])], run: (i, w) => embedding(i, w) },
]);
