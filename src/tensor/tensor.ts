// The Tensor: a strided view of a storage on one backend, with the autograd fields PyTorch has.

import type { DeviceName, Storage, View } from '../backends/backend.js';
import { getBackend, isGradEnabled } from '../runtime.js';
import { Edge, Node, BackwardFn } from '../autograd/node.js';
import { BackwardOptions, runBackward } from '../autograd/backward.js';
import { DType, TypedArray, isFloating } from './dtype.js';
import { Shape, contiguousStrides, formatShape, isContiguous, numel } from './shape.js';
import { track } from './scope.js';
import * as ops from '../ops/index.js';

export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | number;
export type NestedArray = number | boolean | NestedArray[];

/** Releases the storage of a tensor handle that was collected without dispose(). */
const collected = new FinalizationRegistry<Storage>((storage) => releaseStorage(storage));

function releaseStorage(storage: Storage): void {
  if (--storage.refs === 0 && !storage.released) {
    storage.released = true;
    storage.backend.free(storage);
  }
}

export class Tensor {
  requiresGrad = false;
  /** The accumulated gradient of a leaf after backward(); set it to null to clear it. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, or null for a leaf. */
  gradFn: Node | null = null;
  private disposed = false;

  private constructor(
    private readonly store: Storage,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly offset: number,
    tracked: boolean,
  ) {
    collected.register(this, store, this);
    if (tracked) track(this);
  }

  /** Wraps a new storage (its one reference passes to the tensor) as a tensor of `shape`. */
  static fromStorage(storage: Storage, shape: Shape): Tensor {
    return new Tensor(storage, [...shape], contiguousStrides(shape), 0, true);
  }

  /** Creates a second handle on the same storage: a view with its own shape, strides and offset. */
  share(shape: Shape, strides: readonly number[], offset: number, tracked = true): Tensor {
    this.assertAlive('view');
    this.store.refs++;
    return new Tensor(this.store, [...shape], [...strides], offset, tracked);
  }

  /** Creates the handle a graph node keeps, outside every tidy() scope and released by the node. */
  saveForBackward(): Tensor {
    return this.share(this.shape, this.strides, this.offset, false);
  }

  // ---- properties ----

  get dtype(): DType {
    return this.store.dtype;
  }

  get device(): DeviceName {
    return this.store.backend.name;
  }

  get numel(): number {
    return numel(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** Bytes per element on the tensor's backend. */
  get elementSize(): number {
    if (this.dtype === 'float64') return 8;
    return this.dtype === 'float16' ? 2 : 4;
  }

  /** Counts in-place changes to the storage; autograd compares it with the count when a tensor was saved. */
  get version(): number {
    return this.store.version;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  /** Returns the storage view that backends read, after checking the tensor is still alive. */
  asView(op: string): View {
    this.assertAlive(op);
    return { storage: this.store, shape: this.shape, strides: this.strides, offset: this.offset };
  }

  /** True where two tensors share storage; in-place ops use it to bump the version of every alias. */
  sharesStorage(other: Tensor): boolean {
    return this.store === other.store;
  }

  assertAlive(op: string): void {
    if (this.disposed || this.store.released) {
      throw new Error(
        `${op}: this tensor of shape ${formatShape(this.shape)} was released by dispose(), tidy() or shutdown() and ` +
          `cannot be used again; return it from tidy() or pass it to fg.keep() to keep it`,
      );
    }
  }

  /** Marks the storage as changed in place, so that saved copies of it fail loudly in backward. */
  bumpVersion(): void {
    this.store.version++;
  }

  // ---- data ----

  /** Copies the data to the host as a flat typed array in row-major order. */
  async toArray(): Promise<TypedArray> {
    const view = this.asView('toArray');
    return getBackend(this.device).read(view);
  }

  /** Returns the single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.numel !== 1) {
      throw new Error(`item: a tensor of shape ${formatShape(this.shape)} has ${this.numel} elements, but item() needs exactly one; index or reduce it first`);
    }
    return (await this.toArray())[0];
  }

  /** Returns the data as nested arrays, or a plain number for a 0-dim tensor. */
  async tolist(): Promise<NestedArray> {
    const flat = Array.from(await this.toArray(), (v) => (this.dtype === 'bool' ? v !== 0 : v));
    const build = (dim: number, start: number): NestedArray => {
      if (dim === this.shape.length) return flat[start];
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, start + i * step));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor(shape=${formatShape(this.shape)}, dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- autograd ----

  /**
   * Computes the gradient of this tensor with respect to every leaf that requires grad and adds it to
   * their `.grad`. A non-scalar tensor needs `gradient`, the vector of the vector-Jacobian product.
   */
  backward(gradient?: Tensor, options: BackwardOptions = {}): void {
    this.assertAlive('backward');
    if (!this.requiresGrad) {
      throw new Error('backward: this tensor does not require grad and has no gradFn; create the inputs with { requiresGrad: true }');
    }
    if (gradient === undefined) {
      if (this.numel !== 1) {
        throw new Error(
          `backward: grad can be implicitly created only for scalar outputs, but this tensor has shape ${formatShape(this.shape)}; ` +
            `reduce it first (for example loss.sum() or loss.mean()) or pass a gradient of the same shape`,
        );
      }
      const one = ops.full(this.shape, 1, { dtype: this.dtype, device: this.device });
      try {
        runBackward(this, one, options);
      } finally {
        one.dispose();
      }
      return;
    }
    if (!(gradient instanceof Tensor)) {
      throw new TypeError(
        `backward: gradient must be a Tensor, got ${gradient === null ? 'null' : typeof gradient}; ` +
          'options go second, as in backward(undefined, { retainGraph: true })',
      );
    }
    gradient.assertAlive('backward');
    if (gradient.device !== this.device) {
      throw new Error(`backward: gradient is on '${gradient.device}' but the tensor is on '${this.device}'; move it with await gradient.toDevice('${this.device}')`);
    }
    if (gradient.shape.length !== this.shape.length || gradient.shape.some((d, i) => d !== this.shape[i])) {
      throw new Error(`backward: gradient of shape ${formatShape(gradient.shape)} does not match the tensor's shape ${formatShape(this.shape)}`);
    }
    runBackward(this, gradient, options);
  }

  /** Returns a tensor on the same storage that is cut off from the graph. */
  detach(): Tensor {
    return this.share(this.shape, this.strides, this.offset);
  }

  /** Sets requiresGrad in place (only on leaves) and returns this tensor. */
  requiresGrad_(requiresGrad = true): this {
    if (!this.isLeaf && !requiresGrad) {
      throw new Error('requiresGrad_: only leaf tensors can stop requiring grad; use detach() for a non-leaf');
    }
    if (requiresGrad && !isFloating(this.dtype)) {
      throw new Error(`requiresGrad_: only floating-point tensors can require grad, but this one is ${this.dtype}; convert it with .to('float32')`);
    }
    this.requiresGrad = requiresGrad;
    return this;
  }

  /** Releases this handle; the storage is freed once no view of it remains. Calling it twice is harmless. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    collected.unregister(this);
    releaseStorage(this.store);
  }

  /** Records `out` as the result of `op` on `inputs` if any input needs a gradient; returns `out`. */
  static record(op: string, inputs: readonly (Tensor | Scalar | null | undefined)[], out: Tensor, backward: BackwardFn, saved: Tensor[] = []): Tensor {
    if (!isGradEnabled()) return out;
    let any = false;
    const edges: (Edge | null)[] = inputs.map((t) => {
      if (!(t instanceof Tensor) || !t.requiresGrad) return null;
      any = true;
      return t.gradFn ? { node: t.gradFn, leaf: null } : { node: null, leaf: t };
    });
    if (!any) return out;
    out.requiresGrad = true;
    out.gradFn = new Node(op, edges, backward, saved);
    return out;
  }

  // ---- elementwise ----

  add(other: TensorOrScalar, alpha?: number): Tensor { return ops.add(this, other, alpha); }
  sub(other: TensorOrScalar, alpha?: number): Tensor { return ops.sub(this, other, alpha); }
  mul(other: TensorOrScalar): Tensor { return ops.mul(this, other); }
  div(other: TensorOrScalar): Tensor { return ops.div(this, other); }
  pow(exponent: TensorOrScalar): Tensor { return ops.pow(this, exponent); }
  maximum(other: TensorOrScalar): Tensor { return ops.maximum(this, other); }
  minimum(other: TensorOrScalar): Tensor { return ops.minimum(this, other); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  rsqrt(): Tensor { return ops.rsqrt(this); }
  abs(): Tensor { return ops.abs(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  relu(): Tensor { return ops.relu(this); }
  square(): Tensor { return ops.mul(this, this); }
  clamp(min?: number | null, max?: number | null): Tensor { return ops.clamp(this, min, max); }
  eq(other: TensorOrScalar): Tensor { return ops.eq(this, other); }
  ne(other: TensorOrScalar): Tensor { return ops.ne(this, other); }
  lt(other: TensorOrScalar): Tensor { return ops.lt(this, other); }
  le(other: TensorOrScalar): Tensor { return ops.le(this, other); }
  gt(other: TensorOrScalar): Tensor { return ops.gt(this, other); }
  ge(other: TensorOrScalar): Tensor { return ops.ge(this, other); }
  maskedFill(mask: Tensor, value: number): Tensor { return ops.maskedFill(this, mask, value); }
  logicalNot(): Tensor { return ops.logicalNot(this); }

  /** Converts to another dtype or moves to another device; returns this tensor's data as a new tensor. */
  to(dtype: DType): Tensor { return ops.to(this, dtype); }
  /** Copies the tensor to another backend (a readback where it leaves the GPU); it is cut off from the graph. */
  toDevice(device: DeviceName): Promise<Tensor> { return ops.toDevice(this, device); }
  float(): Tensor { return ops.to(this, 'float32'); }
  double(): Tensor { return ops.to(this, 'float64'); }
  int(): Tensor { return ops.to(this, 'int32'); }
  half(): Tensor { return ops.to(this, 'float16'); }
  clone(): Tensor { return ops.clone(this); }

  // ---- in place (PyTorch's trailing underscore) ----

  add_(other: TensorOrScalar, alpha?: number): this { return ops.inPlace(this, 'add_', () => ops.add(this, other, alpha)); }
  sub_(other: TensorOrScalar, alpha?: number): this { return ops.inPlace(this, 'sub_', () => ops.sub(this, other, alpha)); }
  mul_(other: TensorOrScalar): this { return ops.inPlace(this, 'mul_', () => ops.mul(this, other)); }
  div_(other: TensorOrScalar): this { return ops.inPlace(this, 'div_', () => ops.div(this, other)); }
  clamp_(min?: number | null, max?: number | null): this { return ops.inPlace(this, 'clamp_', () => ops.clamp(this, min, max)); }
  maskedFill_(mask: Tensor, value: number): this { return ops.inPlace(this, 'maskedFill_', () => ops.maskedFill(this, mask, value)); }
  fill_(value: number): this { return ops.fill_(this, value); }
  zero_(): this { return ops.fill_(this, 0); }
  copy_(src: Tensor): this { return ops.copy_(this, src); }

  // ---- reductions ----

  sum(dim?: number | number[], keepdim = false): Tensor { return ops.sum(this, dim, keepdim); }
  mean(dim?: number | number[], keepdim = false): Tensor { return ops.mean(this, dim, keepdim); }
  amax(dim?: number | number[], keepdim = false): Tensor { return ops.amax(this, dim, keepdim); }
  amin(dim?: number | number[], keepdim = false): Tensor { return ops.amin(this, dim, keepdim); }
  var(dim?: number | number[], options: { unbiased?: boolean; correction?: number; keepdim?: boolean } = {}): Tensor { return ops.variance(this, dim, options); }
  argmax(dim?: number, keepdim = false): Tensor { return ops.argmax(this, dim, keepdim); }
  argmin(dim?: number, keepdim = false): Tensor { return ops.argmin(this, dim, keepdim); }

  // ---- shape ----

  reshape(...shape: (number | readonly number[])[]): Tensor { return ops.reshape(this, flattenShapeArgs(shape)); }
  view(...shape: (number | readonly number[])[]): Tensor { return ops.view(this, flattenShapeArgs(shape)); }
  transpose(dim0: number, dim1: number): Tensor { return ops.transpose(this, dim0, dim1); }
  /** The transpose of a 2-D tensor, as torch.Tensor.t(). */
  t(): Tensor { return ops.t(this); }
  permute(...dims: (number | readonly number[])[]): Tensor { return ops.permute(this, flattenShapeArgs(dims)); }
  squeeze(dim?: number): Tensor { return ops.squeeze(this, dim); }
  unsqueeze(dim: number): Tensor { return ops.unsqueeze(this, dim); }
  expand(...shape: (number | readonly number[])[]): Tensor { return ops.expand(this, flattenShapeArgs(shape)); }
  contiguous(): Tensor { return ops.contiguous(this); }
  flatten(startDim = 0, endDim = -1): Tensor { return ops.flatten(this, startDim, endDim); }
  narrow(dim: number, start: number, length: number): Tensor { return ops.narrow(this, dim, start, length); }
  slice(dim: number, start?: number, end?: number, step?: number): Tensor { return ops.slice(this, dim, start, end, step); }
  split(splitSize: number | number[], dim = 0): Tensor[] { return ops.split(this, splitSize, dim); }
  chunk(chunks: number, dim = 0): Tensor[] { return ops.chunk(this, chunks, dim); }
  indexSelect(dim: number, index: Tensor): Tensor { return ops.indexSelect(this, dim, index); }
  gather(dim: number, index: Tensor): Tensor { return ops.gather(this, dim, index); }
  matmul(other: Tensor): Tensor { return ops.matmul(this, other); }
}

function flattenShapeArgs(args: (number | readonly number[])[]): number[] {
  if (args.length === 1 && Array.isArray(args[0])) return [...(args[0] as number[])];
  return args as number[];
}

export function isTensor(value: unknown): value is Tensor {
  return value instanceof Tensor;
}
