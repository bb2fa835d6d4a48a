// Helpers shared by the op families: operand checks, output allocation and broadcasting gradients back.

import type { DeviceName, View } from '../backends/backend.js';
import type { CpuBackend } from '../backends/cpu/cpu-backend.js';
import { getBackend } from '../runtime.js';
import { DType } from '../tensor/dtype.js';
import { Shape, broadcastShapes, contiguousStrides, formatShape } from '../tensor/shape.js';
import { Tensor, TensorOrScalar } from '../tensor/tensor.js';

export function checkTensor(op: string, value: unknown, name = 'input'): Tensor {
  if (!(value instanceof Tensor)) {
    throw new TypeError(`${op}: ${name} must be a Tensor, got ${value === null ? 'null' : typeof value}`);
  }
  value.assertAlive(op);
  return value;
}

/** Returns the one device that all tensor operands live on, or throws naming both. */
export function commonDevice(op: string, operands: readonly (TensorOrScalar | null | undefined)[]): DeviceName {
  let device: DeviceName | null = null;
  for (const v of operands) {
    if (!(v instanceof Tensor)) continue;
    v.assertAlive(op);
    if (device && v.device !== device) {
      throw new Error(`${op}: expected all tensors on one device, but found '${device}' and '${v.device}'; move one with await t.toDevice('${device}')`);
    }
    device = v.device;
  }
  if (!device) throw new TypeError(`${op}: at least one operand must be a Tensor`);
  return device;
}

export function checkDTypeOnDevice(op: string, dtype: DType, device: DeviceName): void {
  if (!getBackend(device).supportsDType(dtype)) {
    const fix = dtype === 'float64'
      ? "float64 runs only on the CPU backend: use float32 on WebGPU, or put the tensor on the CPU " +
        "({ device: 'cpu' } when creating it, await t.toDevice('cpu') for an existing one)"
      : "this adapter lacks the 'shader-f16' feature: use float32, or the CPU backend";
    throw new Error(`${op}: dtype ${dtype} is not supported on the ${device} backend; ${fix}`);
  }
}

/**
 * Throws if an index tensor on the CPU backend contains a value outside [0, size) other than `ignore`.
 * `dimText` describes what is indexed, for example 'dim 1 of size 4'.
 * NOTE: indices on WebGPU are not checked, because that would need a readback; the kernels clamp them instead.
 */
export function checkIndexRange(op: string, index: Tensor, size: number, dimText: string, label = 'index', ignore?: number): void {
  if (index.device !== 'cpu') return;
  const values = (getBackend('cpu') as CpuBackend).readSync(index.asView(op));
  for (const v of values) {
    if (v === ignore || (v >= 0 && v < size)) continue;
    const valid = size === 0 ? 'no valid values' : `valid: 0 to ${size - 1}`;
    const ignored = ignore === undefined ? '' : `, or ignoreIndex ${ignore}`;
    throw new RangeError(`${op}: ${label} ${v} is out of range for ${dimText} (${valid}${ignored})`);
  }
}

/** Allocates a contiguous tensor of `shape` on a device. */
export function empty(shape: Shape, dtype: DType, device: DeviceName): Tensor {
  checkDTypeOnDevice('empty', dtype, device);
  const storage = getBackend(device).allocate(dtype, shape.reduce((a, b) => a * b, 1));
  return Tensor.fromStorage(storage, shape);
}

export function contiguousView(t: Tensor): View {
  return { storage: t.asView('view').storage, shape: t.shape, strides: contiguousStrides(t.shape), offset: 0 };
}

/** Returns the view of `t` broadcast to `shape`: size-1 and missing leading dims get stride 0. */
export function broadcastView(op: string, t: Tensor, shape: Shape): View {
  const view = t.asView(op);
  const lead = shape.length - t.shape.length;
  const strides = shape.map((d, i) => {
    const j = i - lead;
    if (j < 0) return 0;
    return t.shape[j] === 1 && d !== 1 ? 0 : t.strides[j];
  });
  return { storage: view.storage, shape, strides, offset: view.offset };
}

export function outputShape(op: string, operands: readonly (TensorOrScalar | null | undefined)[]): number[] {
  const shapes = operands.filter((v): v is Tensor => v instanceof Tensor).map((t) => t.shape);
  return broadcastShapes(op, ...shapes);
}

/**
 * Sums a gradient over the dims that broadcasting added or stretched, so that it matches `shape`.
 * Always returns a new handle, which the caller owns.
 */
export function sumTo(grad: Tensor, shape: Shape): Tensor {
  if (grad.shape.length === shape.length && grad.shape.every((d, i) => d === shape[i])) return grad.detach();
  const lead = grad.shape.length - shape.length;
  const dims: number[] = [];
  grad.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) dims.push(i);
  });
  const summed = grad.sum(dims, true);
  const out = summed.reshape([...shape]);
  summed.dispose();
  return out;
}

export function describeShape(shape: Shape): string {
  return formatShape(shape);
}
