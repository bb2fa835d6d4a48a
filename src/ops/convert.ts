// dtype conversion, device moves, clone and the in-place ops (PyTorch's trailing underscore).

import type { DeviceName } from '../backends/backend.js';
import { getBackend, isGradEnabled } from '../runtime.js';
import { DType, checkDType, isFloating } from '../tensor/dtype.js';
import { broadcastShapes, formatShape, sameShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { arg, registerOp } from './registry.js';
import { copyInto } from './shape.js';
import { checkDTypeOnDevice, checkTensor, empty } from './util.js';

/** Returns x converted to `dtype` (a new handle on the same storage when the dtype already matches). */
export function to(x: Tensor, dtype: DType): Tensor {
  checkTensor('to', x);
  if (dtype === ('cpu' as DType) || dtype === ('webgpu' as DType)) {
    throw new TypeError(`to: moving to a device reads data back, so it is asynchronous: use await t.toDevice('${dtype}')`);
  }
  checkDType('to', dtype);
  if (dtype === x.dtype) return Tensor.record('to', [x], x.detach(), (g) => [g.detach()]);
  checkDTypeOnDevice('to', dtype, x.device);
  const out = empty(x.shape, dtype, x.device);
  copyInto('to', out, x);
  if (!isFloating(dtype) || !isFloating(x.dtype)) return out;
  const source = x.dtype;
  return Tensor.record('to', [x], out, (g) => [to(g, source)]);
}

/** Copies x to another backend; the result is a leaf with the same requiresGrad. */
export async function toDevice(x: Tensor, device: DeviceName): Promise<Tensor> {
  checkTensor('toDevice', x);
  const backend = getBackend(device);
  if (!backend.supportsDType(x.dtype)) checkDTypeOnDevice('toDevice', x.dtype, device);
  const data = await x.toArray();
  const out = Tensor.fromStorage(backend.upload(x.dtype, data), x.shape);
  if (x.requiresGrad) out.requiresGrad = true;
  return out;
}

/** Copies x into its own storage, recorded so that gradients flow through the copy. */
export function clone(x: Tensor): Tensor {
  checkTensor('clone', x);
  const out = empty(x.shape, x.dtype, x.device);
  copyInto('clone', out, x);
  return Tensor.record('clone', [x], out, (g) => [g.detach()]);
}

function checkInPlace(op: string, x: Tensor): void {
  checkTensor(op, x);
  if (!isGradEnabled()) return;
  if (x.requiresGrad && x.isLeaf) {
    throw new Error(
      `${op}: a leaf tensor that requires grad (shape ${formatShape(x.shape)}) cannot be changed in place while gradients are recorded; ` +
        'wrap the update in fg.noGrad(() => ...), as optimizers do',
    );
  }
  if (x.requiresGrad) {
    throw new Error(`${op}: in-place ops on tensors that are part of a graph are not supported; use the out-of-place op (without the trailing underscore)`);
  }
}

/**
 * Checks that x may change in place, computes the result, writes it into x's storage and marks x as
 * changed. Nothing is computed or written when a check fails.
 */
export function inPlace<T extends Tensor>(x: T, op: string, compute: () => Tensor): T {
  checkInPlace(op, x);
  const result = compute();
  try {
    if (result.requiresGrad && isGradEnabled()) {
      throw new Error(`${op}: the other operand requires grad, so the result would need a graph; use the out-of-place op instead`);
    }
    if (result.shape.length !== x.shape.length || result.shape.some((d, i) => d !== x.shape[i])) {
      throw new Error(`${op}: the result has shape ${formatShape(result.shape)}, which does not fit the tensor's shape ${formatShape(x.shape)} in place`);
    }
    copyInto(op, x, result);
    x.bumpVersion();
    return x;
  } finally {
    result.dispose();
  }
}

export function fill_<T extends Tensor>(x: T, value: number): T {
  checkInPlace('fill_', x);
  copyInto('fill_', x, value);
  x.bumpVersion();
  return x;
}

/** Copies src (broadcast to x's shape, converted to x's dtype) into x. */
export function copy_<T extends Tensor>(x: T, src: Tensor): T {
  checkInPlace('copy_', x);
  checkTensor('copy_', src, 'src');
  if (src.device !== x.device) throw new Error(`copy_: src is on '${src.device}' but the tensor is on '${x.device}'; move it with await src.toDevice('${x.device}')`);
  const shape = broadcastShapes('copy_', x.shape, src.shape);
  if (!sameShape(shape, x.shape)) {
    throw new Error(`copy_: src of shape ${formatShape(src.shape)} cannot be broadcast to the tensor's shape ${formatShape(x.shape)}`);
  }
  copyInto('copy_', x, src);
  x.bumpVersion();
  return x;
}

registerOp('clone', [{ label: 'strided', args: [arg([3, 8])], run: (x) => x.t().clone().mul(x.t()) }]);
registerOp('to', [{ label: 'same dtype', args: [arg([5])], run: (x) => x.to(x.dtype).mul(3) }]);
