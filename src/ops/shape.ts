// Shape ops. Most are views (a new shape and strides over the same storage, no copy); cat, stack and
// a reshape of a non-contiguous tensor copy.

import { getBackend } from '../runtime.js';
import { Shape, contiguousStrides, formatShape, normalizeDim, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, mapOp } from './elementwise.js';
import { arg, registerOp } from './registry.js';
import { checkIndexRange, checkTensor, commonDevice, empty, sumTo } from './util.js';

/** Copies `src` (broadcast to dst's shape) into the storage that `dst` views; records nothing. */
export function copyInto(op: string, dst: Tensor, src: Tensor | number): void {
  const view = dst.asView(op);
  if (src instanceof Tensor) {
    const srcView = src.asView(op);
    const lead = dst.shape.length - src.shape.length;
    const strides = dst.shape.map((d, i) => (i < lead || src.shape[i - lead] === 1 ? 0 : src.strides[i - lead]));
    const source = { ...srcView, shape: dst.shape, strides };
    if (dst.dtype === 'bool' && src.dtype !== 'bool') getBackend(dst.device).map(K.toBool, [source], src.dtype, view);
    else getBackend(dst.device).map(K.identity, [source], dst.dtype, view);
  } else {
    getBackend(dst.device).map(K.fill, [], dst.dtype, view, [src]);
  }
}

/** Returns a view of x with a new shape, strides and offset, recorded with its own backward. */
function makeView(op: string, x: Tensor, shape: Shape, strides: readonly number[], offset: number, backward: (g: Tensor) => Tensor): Tensor {
  const out = x.share(shape, strides, offset);
  return Tensor.record(op, [x], out, (g) => [backward(g)]);
}

/** Resolves a -1 entry and checks that the element count is kept. */
function inferShape(op: string, x: Tensor, shape: readonly number[]): number[] {
  const out = [...shape];
  const unknown = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new Error(`${op}: only one dimension can be -1, got ${formatShape(shape)}`);
  for (const d of out) {
    if (!Number.isInteger(d) || d < -1) throw new TypeError(`${op}: invalid shape ${formatShape(shape)}; sizes must be integers >= 0 or a single -1`);
  }
  if (unknown >= 0) {
    const known = numel(out.filter((d) => d !== -1));
    if (known === 0 || x.numel % known !== 0) {
      throw new Error(`${op}: shape ${formatShape(shape)} is invalid for a tensor of ${x.numel} elements (shape ${formatShape(x.shape)})`);
    }
    out[unknown] = x.numel / known;
  }
  if (numel(out) !== x.numel) {
    throw new Error(`${op}: shape ${formatShape(shape)} is invalid for a tensor of ${x.numel} elements (shape ${formatShape(x.shape)})`);
  }
  return out;
}

/** Returns a tensor with the same data and a new shape; a view when the input is contiguous, else a copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('reshape', x);
  const target = inferShape('reshape', x, shape);
  const inputShape = x.shape;
  if (x.isContiguous()) {
    return makeView('reshape', x, target, contiguousStrides(target), x.offset, (g) => reshape(g, inputShape));
  }
  const copy = contiguous(x);
  const out = makeView('reshape', copy, target, contiguousStrides(target), 0, (g) => reshape(g, inputShape));
  copy.dispose();
  return out;
}

/** Like reshape, but only as a view: a non-contiguous input is an error, as in torch.Tensor.view. */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('view', x);
  const target = inferShape('view', x, shape);
  if (!x.isContiguous()) {
    throw new Error(`view: a tensor of shape ${formatShape(x.shape)} with strides ${formatShape(x.strides)} is not contiguous, so it cannot be viewed as ${formatShape(target)}; use reshape() or call contiguous() first`);
  }
  const inputShape = x.shape;
  return makeView('view', x, target, contiguousStrides(target), x.offset, (g) => reshape(g, inputShape));
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  checkTensor('flatten', x);
  if (x.shape.length === 0) return reshape(x, [1]);
  const start = normalizeDim('flatten', startDim, x.shape.length);
  const end = normalizeDim('flatten', endDim, x.shape.length);
  if (start > end) throw new Error(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  const shape = [...x.shape.slice(0, start), numel(x.shape.slice(start, end + 1)), ...x.shape.slice(end + 1)];
  return reshape(x, shape);
}

/** Returns a contiguous tensor with the same values: a new handle on the same storage if x already is one. */
export function contiguous(x: Tensor): Tensor {
  checkTensor('contiguous', x);
  if (x.isContiguous()) return makeView('contiguous', x, x.shape, x.strides, x.offset, (g) => g.detach());
  const out = empty(x.shape, x.dtype, x.device);
  copyInto('contiguous', out, x);
  return Tensor.record('contiguous', [x], out, (g) => [g.detach()]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  checkTensor('permute', x);
  const rank = x.shape.length;
  const order = dims.map((d) => normalizeDim('permute', d, rank));
  if (order.length !== rank || new Set(order).size !== rank) {
    throw new Error(`permute: dims ${formatShape(dims)} must name each of the ${rank} dimensions of a tensor of shape ${formatShape(x.shape)} exactly once`);
  }
  const inverse = new Array<number>(rank);
  order.forEach((d, i) => (inverse[d] = i));
  return makeView('permute', x, order.map((d) => x.shape[d]), order.map((d) => x.strides[d]), x.offset, (g) => permute(g, inverse));
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  checkTensor('transpose', x);
  const rank = x.shape.length;
  const order = [...Array(rank).keys()];
  const a = normalizeDim('transpose', dim0, rank);
  const b = normalizeDim('transpose', dim1, rank);
  [order[a], order[b]] = [order[b], order[a]];
  return permute(x, order);
}

export function t(x: Tensor): Tensor {
  checkTensor('t', x);
  if (x.shape.length > 2) throw new Error(`t: expects a tensor with at most 2 dims, got shape ${formatShape(x.shape)}; use transpose(dim0, dim1)`);
  return x.shape.length < 2 ? makeView('t', x, x.shape, x.strides, x.offset, (g) => g.detach()) : transpose(x, 0, 1);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  checkTensor('squeeze', x);
  const inputShape = x.shape;
  const drop = dim === undefined
    ? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)
    : x.shape.length === 0 ? [] : [normalizeDim('squeeze', dim, x.shape.length)].filter((i) => x.shape[i] === 1);
  const shape = x.shape.filter((_, i) => !drop.includes(i));
  const strides = x.strides.filter((_, i) => !drop.includes(i));
  return makeView('squeeze', x, shape, strides, x.offset, (g) => reshape(g, inputShape));
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  checkTensor('unsqueeze', x);
  const d = normalizeDim('unsqueeze', dim, x.shape.length + 1);
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.shape.length ? x.strides[d] * x.shape[d] : 1);
  const inputShape = x.shape;
  return makeView('unsqueeze', x, shape, strides, x.offset, (g) => reshape(g, inputShape));
}

/** Broadcasts size-1 dims (and new leading dims) to `shape` without copying; -1 keeps a size. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('expand', x);
  const lead = shape.length - x.shape.length;
  if (lead < 0) throw new Error(`expand: the target shape ${formatShape(shape)} has fewer dims than the input's ${formatShape(x.shape)}`);
  const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  const strides = target.map((d, i) => {
    const j = i - lead;
    if (j < 0) return 0;
    if (x.shape[j] === d) return x.strides[j];
    if (x.shape[j] === 1) return 0;
    throw new Error(`expand: the input's size ${x.shape[j]} at dim ${j} cannot be expanded to ${d} (shape ${formatShape(x.shape)} to ${formatShape(shape)}); only size-1 dims expand`);
  });
  const inputShape = x.shape;
  return makeView('expand', x, target, strides, x.offset, (g) => sumTo(g, inputShape));
}

/** x[start:end:step] along one dim, as a view; negative bounds count from the end as in Python. */
export function slice(x: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  checkTensor('slice', x);
  const d = normalizeDim('slice', dim, x.shape.length);
  const size = x.shape[d];
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`slice: step must be a positive integer, got ${step}`);
  const clampIndex = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const lo = clampIndex(start);
  const hi = Math.max(clampIndex(end ?? size), lo);
  const length = Math.ceil((hi - lo) / step);
  const shape = [...x.shape];
  shape[d] = length;
  const strides = [...x.strides];
  strides[d] = x.strides[d] * step;
  const inputShape = x.shape;
  return makeView('slice', x, shape, strides, x.offset + lo * x.strides[d], (g) => {
    const full = empty(inputShape, g.dtype, g.device);
    copyInto('slice', full, 0);
    const window = slice(full, d, lo, hi, step);
    copyInto('slice', window, g);
    window.dispose();
    return full;
  });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  checkTensor('narrow', x);
  const d = normalizeDim('narrow', dim, x.shape.length);
  const size = x.shape[d];
  const begin = start < 0 ? start + size : start;
  if (!Number.isInteger(length) || length < 0 || begin < 0 || begin + length > size) {
    throw new RangeError(`narrow: start ${start} and length ${length} do not fit in dim ${dim} of size ${size}`);
  }
  return slice(x, d, begin, begin + length);
}

/** Splits into chunks of `splitSize` (the last may be smaller) or into the listed sizes, as views. */
export function split(x: Tensor, splitSize: number | readonly number[], dim = 0): Tensor[] {
  checkTensor('split', x);
  const d = normalizeDim('split', dim, x.shape.length);
  const size = x.shape[d];
  let sizes: number[];
  if (typeof splitSize === 'number') {
    if (!Number.isInteger(splitSize) || splitSize <= 0) throw new RangeError(`split: splitSize must be a positive integer, got ${splitSize}`);
    sizes = [];
    for (let at = 0; at < size; at += splitSize) sizes.push(Math.min(splitSize, size - at));
  } else {
    sizes = [...splitSize];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== size) throw new Error(`split: sizes ${formatShape(sizes)} add up to ${total}, but dim ${dim} has size ${size}`);
  }
  let at = 0;
  return sizes.map((n) => {
    const part = narrow(x, d, at, n);
    at += n;
    return part;
  });
}

export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  checkTensor('chunk', x);
  const d = normalizeDim('chunk', dim, x.shape.length);
  if (!Number.isInteger(chunks) || chunks <= 0) throw new RangeError(`chunk: chunks must be a positive integer, got ${chunks}`);
  return split(x, Math.max(1, Math.ceil(x.shape[d] / chunks)), d);
}

/** Concatenates tensors along an existing dim. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new TypeError('cat: expects a non-empty array of tensors');
  tensors.forEach((t, i) => checkTensor('cat', t, `tensors[${i}]`));
  const device = commonDevice('cat', tensors);
  const first = tensors[0];
  const d = normalizeDim('cat', dim, first.shape.length);
  for (const [i, t] of tensors.entries()) {
    const same = t.shape.length === first.shape.length && t.shape.every((s, j) => j === d || s === first.shape[j]);
    if (!same) {
      throw new Error(`cat: tensors[${i}] has shape ${formatShape(t.shape)}, which does not match ${formatShape(first.shape)} outside dim ${dim}`);
    }
    if (t.dtype !== first.dtype) throw new TypeError(`cat: tensors[${i}] is ${t.dtype} but tensors[0] is ${first.dtype}; convert them to one dtype first`);
  }
  const shape = [...first.shape];
  shape[d] = tensors.reduce((n, t) => n + t.shape[d], 0);
  const out = empty(shape, first.dtype, device);
  const sizes = tensors.map((t) => t.shape[d]);
  let at = 0;
  for (const t of tensors) {
    const part = out.share(t.shape, out.strides, at * out.strides[d]);
    copyInto('cat', part, t);
    part.dispose();
    at += t.shape[d];
  }
  return Tensor.record('cat', tensors, out, (g) => {
    const parts = split(g, sizes, d);
    return parts.map((p, i) => (tensors[i].requiresGrad ? p : (p.dispose(), null)));
  });
}

/** Stacks equally shaped tensors along a new dim. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(tensors as unknown) || tensors.length === 0) throw new TypeError('stack: expects a non-empty array of tensors');
  tensors.forEach((t, i) => {
    checkTensor('stack', t, `tensors[${i}]`);
    if (t.shape.length !== tensors[0].shape.length || t.shape.some((s, j) => s !== tensors[0].shape[j])) {
      throw new Error(`stack: tensors[${i}] has shape ${formatShape(t.shape)}, but tensors[0] has ${formatShape(tensors[0].shape)}; stack needs equal shapes`);
    }
  });
  const d = normalizeDim('stack', dim, tensors[0].shape.length + 1);
  const expanded = tensors.map((t) => unsqueeze(t, d));
  const out = cat(expanded, d);
  for (const e of expanded) e.dispose();
  return out;
}

function checkIndex(op: string, index: Tensor): void {
  checkTensor(op, index, 'index');
  if (index.dtype !== 'int32') throw new TypeError(`${op}: index must be an int32 tensor, got ${index.dtype}; create it with { dtype: 'int32' }`);
}

/** Picks entries along `dim` at the positions in a 1-D index, as torch.index_select. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  checkTensor('indexSelect', x);
  checkIndex('indexSelect', index);
  commonDevice('indexSelect', [x, index]);
  if (index.shape.length !== 1) throw new Error(`indexSelect: index must be 1-D, got shape ${formatShape(index.shape)}`);
  const d = normalizeDim('indexSelect', dim, x.shape.length);
  checkIndexRange('indexSelect', index, x.shape[d], `dim ${dim} of size ${x.shape[d]}`);
  const shape = [...x.shape];
  shape[d] = index.shape[0];
  const indexView = index.asView('indexSelect');
  const strides = shape.map((_, i) => (i === d ? index.strides[0] : 0));
  const storage = getBackend(x.device).gather(x.asView('indexSelect'), d, { ...indexView, shape, strides });
  const out = Tensor.fromStorage(storage, shape);
  const inputShape = x.shape;
  return Tensor.record('indexSelect', [x], out, (g, [idx]) => {
    const idxView = idx.asView('indexSelect');
    const gv = g.asView('indexSelect');
    const scattered = getBackend(g.device).scatterAdd(gv, d, { ...idxView, shape: g.shape, strides }, inputShape);
    return [Tensor.fromStorage(scattered, inputShape)];
  }, [index]);
}

/** out[i][j] = x[index[i][j]][j] for dim 0, and so on, as torch.gather. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkTensor('gather', x);
  checkIndex('gather', index);
  commonDevice('gather', [x, index]);
  const d = normalizeDim('gather', dim, x.shape.length);
  if (index.shape.length !== x.shape.length || index.shape.some((s, i) => i !== d && s > x.shape[i])) {
    throw new Error(`gather: index of shape ${formatShape(index.shape)} must have the rank of the input ${formatShape(x.shape)} and no larger size outside dim ${dim}`);
  }
  checkIndexRange('gather', index, x.shape[d], `dim ${dim} of size ${x.shape[d]}`);
  const storage = getBackend(x.device).gather(x.asView('gather'), d, index.asView('gather'));
  const out = Tensor.fromStorage(storage, index.shape);
  const inputShape = x.shape;
  return Tensor.record('gather', [x], out, (g, [idx]) => {
    const scattered = getBackend(g.device).scatterAdd(g.asView('gather'), d, idx.asView('gather'), inputShape);
    return [Tensor.fromStorage(scattered, inputShape)];
  }, [index]);
}

registerOp('reshape', [
  { label: 'merge and -1', args: [arg([2, 3, 4])], run: (x) => x.reshape([6, -1]).mul(x.reshape(6, 4)) },
  { label: 'non-contiguous input', args: [arg([3, 5])], run: (x) => x.t().reshape([15]) },
]);
registerOp('view', [{ label: 'split dim', args: [arg([12])], run: (x) => x.view([3, 4]).exp() }]);
registerOp('permute', [
  { label: 'three dims', args: [arg([2, 3, 4])], run: (x) => x.permute([2, 0, 1]).contiguous() },
  { label: 'then elementwise', args: [arg([2, 3, 4]), arg([4, 2, 3])], run: (x, y) => x.permute(2, 0, 1).mul(y) },
]);
registerOp('transpose', [{ label: 'last two', args: [arg([2, 3, 5])], run: (x) => x.transpose(-1, -2).mul(2) }]);
registerOp('squeeze', [
  { label: 'all', args: [arg([1, 3, 1, 2])], run: (x) => x.squeeze().exp() },
  { label: 'one dim', args: [arg([3, 1])], run: (x) => x.squeeze(1).exp() },
]);
registerOp('unsqueeze', [{ label: 'middle', args: [arg([3, 4])], run: (x) => x.unsqueeze(1).add(x.unsqueeze(0).unsqueeze(-1)) }]);
registerOp('expand', [{ label: 'row to matrix', args: [arg([1, 5])], run: (x) => x.expand([4, -1]).mul(x.expand(3, 4, 5).sum(0)) }]);
registerOp('contiguous', [{ label: 'of a transpose', args: [arg([4, 70])], run: (x) => x.t().contiguous() }]);
registerOp('slice', [
  { label: 'stepped', args: [arg([10, 3])], run: (x) => x.slice(0, 1, 9, 3) },
  { label: 'negative bounds', args: [arg([4, 9])], run: (x) => x.slice(1, -5, -1) },
]);
registerOp('narrow', [{ label: 'middle rows', args: [arg([6, 4])], run: (x) => x.narrow(0, 2, 3).mul(x.narrow(0, 0, 3)) }]);
registerOp('split', [{ label: 'uneven chunks', args: [arg([7, 3])], run: (x) => { const [a, b, c] = x.split(3); return a.sum(0).add(b.mul(2).sum(0)).add(c.sum(0)); } }]);
registerOp('cat', [
  { label: 'dim 0', args: [arg([2, 3]), arg([4, 3])], run: (a, b) => cat([a, b], 0) },
  { label: 'last dim of views', args: [arg([3, 2]), arg([2, 3])], run: (a, b) => cat([a, b.t()], -1) },
]);
registerOp('stack', [{ label: 'new middle dim', args: [arg([3, 4]), arg([3, 4])], run: (a, b) => stack([a, b], 1) }]);
registerOp('indexSelect', [
  { label: 'repeated rows', args: [arg([5, 3]), arg([7], 'index', { high: 5 })], run: (x, i) => x.indexSelect(0, i) },
  { label: 'columns', args: [arg([3, 6]), arg([4], 'index', { high: 6 })], run: (x, i) => x.indexSelect(1, i) },
]);
registerOp('gather', [
  { label: 'along last dim', args: [arg([4, 5]), arg([4, 3], 'index', { high: 5 })], run: (x, i) => x.gather(1, i) },
  { label: 'along first dim', args: [arg([3, 4]), arg([5, 4], 'index', { high: 3 })], run: (x, i) => x.gather(0, i) },
]);
