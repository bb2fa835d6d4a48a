// The contract between tensors and the two backends. A backend owns flat storages and runs a small
// set of kernels over strided views of them. Every differentiable op in src/ops is built from these kernels.

import type { DType, TypedArray } from '../tensor/dtype.js';
import type { Shape } from '../tensor/shape.js';

export type DeviceName = 'webgpu' | 'cpu';

/** A flat buffer of one dtype on one backend, shared by every tensor that views it. */
export class Storage {
  /** Tensor handles that still use this storage; it goes back to the pool when this reaches zero. */
  refs = 1;
  /** Counts in-place writes, so that autograd can detect a saved tensor that changed. */
  version = 0;
  released = false;

  constructor(
    readonly backend: Backend,
    readonly dtype: DType,
    readonly numel: number,
    /** The backend's own handle: a GPUBuffer or a typed array. */
    readonly data: unknown,
    readonly bytes: number,
  ) {}
}

/** A strided window into a storage: element [i, j, ...] is at offset + i * strides[0] + j * strides[1] + ... */
export interface View {
  readonly storage: Storage;
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * An elementwise function, given once for both backends. `wgsl` is an expression in the inputs a, b, c
 * and the scalar parameters p0..p3, all of the compute type, and `js` computes the same on numbers.
 * A predicate returns a boolean, which is stored as 0 or 1.
 */
export interface MapKernel {
  readonly name: string;
  readonly arity: number;
  readonly wgsl: string;
  readonly js: (a: number, b: number, c: number, p: readonly number[]) => number | boolean;
  readonly predicate?: boolean;
  /** WGSL helper functions that the expression calls, by name (see backends/webgpu/wgsl.ts). */
  readonly helpers?: readonly string[];
}

export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

/** The outputs of a LayerNorm forward: y has x's shape and dtype; shiftedMean and rstd hold one value per row. */
export interface LayerNormOutputs {
  out: Storage;
  /**
   * Each row's mean minus the row's first element x[row, 0], float64 for float64 input and float32 otherwise.
   * Relative to x[row, 0] a float32 mean keeps its precision where the row's offset dwarfs its spread
   * (values near 1e4 with unit spread), and a constant row gets exactly 0.
   */
  shiftedMean: Storage;
  /** Row reciprocal standard deviations 1 / sqrt(var + eps), in the dtype of `shiftedMean`. */
  rstd: Storage;
}

/** The gradients of a LayerNorm: dx has x's shape, dweight and dbias the weight's (null where not requested). */
export interface LayerNormGrads {
  dx: Storage;
  dweight: Storage | null;
  dbias: Storage | null;
}

export interface LayerNormKernelOptions {
  /**
   * Invocations that share one row (a power of two up to the workgroup size). The backend chooses it from
   * the row width and the adapter; tests set it to reach mappings that only huge inputs would pick.
   */
  threadsPerRow?: number;
}

/** Activations that matmul can apply as it stores each sum (torch's gelu, exact or tanh form). */
export type MatmulActivation = 'gelu' | 'geluTanh';

/** Work that matmul fuses into its stores: out = activation(a @ b + bias). */
export interface MatmulEpilogue {
  /** A 1-D view of length n added to every row of the product. */
  bias?: View;
  activation?: MatmulActivation;
  /** Receives a @ b + bias, the activation's input, contiguous like out; required with an activation. */
  preActivation?: Storage;
}

/** The outputs of a fused cross entropy forward: one value per row of logits in each storage, contiguous. */
export interface CrossEntropyOutputs {
  /** Row losses in the logits' dtype, 0 for rows whose target is ignoreIndex. */
  loss: Storage;
  /** Row logsumexp, log(sum_j exp(x_j)): float64 for float64 logits and float32 otherwise. */
  lse: Storage;
}

/** The hyperparameters of one Adam or AdamW step, as torch.optim.Adam and AdamW (1.13) name them. */
export interface AdamStepOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** True for AdamW: decay the parameter by lr * weightDecay instead of adding weightDecay * x to the gradient. */
  decoupled: boolean;
  amsgrad: boolean;
  maximize: boolean;
}

/**
 * One parameter of an Adam step. All views are contiguous (any offset), have one dtype and the same element
 * count. param and the moments each have a storage of their own, and grad shares none of theirs.
 */
export interface AdamStepTarget {
  param: View;
  grad: View;
  expAvg: View;
  expAvgSq: View;
  /** The running maximum of expAvgSq, required with amsgrad (zeros before the first step). */
  maxExpAvgSq: View | null;
  /** Steps taken so far, including this one: t in the bias corrections 1 - beta^t. */
  step: number;
}

export interface AdamKernelOptions {
  /**
   * Parameters per WebGPU dispatch. The backend chooses it from the adapter's storage buffer limit; tests set
   * a smaller value to reach the grouping of adapters with fewer storage buffers.
   */
  paramsPerDispatch?: number;
}

/** The fused input transform of scaledMaskedSoftmax: softmax(scale * x + masks) along the last dim. */
export interface ScaledMaskedSoftmaxOptions {
  scale: number;
  /** Masks key j > query i, where i is the row's index along the second-to-last dim and j the column. */
  causal: boolean;
  /** At most two masks, each a view expanded to x's shape: bool (true sets -inf) or floating point (added). */
  masks: readonly View[];
}

export interface MemoryStats {
  /** Bytes held by live tensors (and the backend's scratch buffers). */
  liveBytes: number;
  /** Bytes of released buffers kept for reuse. */
  pooledBytes: number;
  /** The largest liveBytes seen since start. */
  peakBytes: number;
}

export interface Backend {
  readonly name: DeviceName;
  /** Adapter limits and features, in words, for error messages and benchmark reports. */
  readonly description: string;
  supportsDType(dtype: DType): boolean;

  allocate(dtype: DType, numel: number): Storage;
  upload(dtype: DType, data: TypedArray): Storage;
  free(storage: Storage): void;
  /** Reads a view into a new host array in logical (row-major) order. */
  read(view: View): Promise<TypedArray>;

  /**
   * out[i] = kernel(inputs[0][i], inputs[1][i], ...) over the shape of `out`. Each input is a view already
   * expanded to that shape (broadcast dims have stride 0) or a plain number. `out` may alias an input.
   */
  map(kernel: MapKernel, inputs: readonly (View | number)[], compute: DType, out: View, params?: readonly number[]): void;
  /**
   * Reduces the trailing `reducedDims` dims of `x` (permuted there by the caller) into a contiguous
   * storage with the shape of the leading dims. argmax and argmin return int32 positions.
   */
  reduce(op: ReduceOp, x: View, reducedDims: number, outDType: DType): Storage;
  /**
   * Batched matmul: a is [...batch, m, k], b is [...batch, k, n] (batch dims already broadcast); out is
   * contiguous. The epilogue, if given, adds a bias and applies an activation in the same pass.
   */
  matmul(a: View, b: View, epilogue?: MatmulEpilogue): Storage;
  /** Softmax or logSoftmax over the last dim of a view; the output is contiguous. */
  softmax(x: View, log: boolean): Storage;
  /** softmax(scale * x + masks) over the last dim of a view, in one kernel; the output is contiguous. */
  scaledMaskedSoftmax(x: View, options: ScaledMaskedSoftmaxOptions): Storage;
  /**
   * The gradient of a softmax from its output y over the last dim: dx = scale * y * (g - sum(g * y)), or
   * dx = g - exp(y) * sum(g) when y is a logSoftmax output (`log`, which ignores scale). One kernel; dx is contiguous.
   */
  softmaxBackward(y: View, grad: View, scale: number, log: boolean): Storage;
  /** out[..., i, ...] = x[..., index[..., i, ...], ...] along `dim`; index has the output's shape. */
  gather(x: View, dim: number, index: View): Storage;
  /** The reverse of gather: out (of `shape`) sums src over equal indices along `dim`, in a fixed order. */
  scatterAdd(src: View, dim: number, index: View, shape: Shape): Storage;

  /**
   * y = (x - mean) / sqrt(var + eps) * weight + bias over the last `width` elements of each row, with the
   * biased variance. x is a contiguous view; weight and bias are contiguous views of `width` elements or null.
   */
  layerNorm(x: View, width: number, weight: View | null, bias: View | null, eps: number, options?: LayerNormKernelOptions): LayerNormOutputs;
  /**
   * The LayerNorm gradients from the saved x, weight, shiftedMean and rstd, without recomputing the statistics.
   * grad and x are contiguous views of the same shape; dbias is computed only when `withBias` is set, and
   * dweight only when weight is given. dweight and dbias are deterministic (a fixed summation order).
   */
  layerNormBackward(
    grad: View, x: View, width: number, weight: View | null, shiftedMean: View, rstd: View, withBias: boolean, options?: LayerNormKernelOptions,
  ): LayerNormGrads;

  /**
   * Cross entropy over the rows of `logits` ([...rows, C], any strides) with int32 class indices `target`
   * (a 1-D view, one per row): loss = (1 - s) * (lse - x_target) + s * (lse - mean_j x_j) with s the label
   * smoothing, and 0 where target == ignoreIndex. Targets are assumed in range (the op checks them on the CPU).
   */
  crossEntropy(logits: View, target: View, ignoreIndex: number, labelSmoothing: number): CrossEntropyOutputs;
  /**
   * dx = grad_row * (exp(x - lse) - (1 - s) * onehot(target) - s / C) on rows whose target is not ignoreIndex,
   * and 0 on the others. grad and lse are 1-D views with one value per row, and grad's stride may be 0.
   * dx is contiguous in the [...rows, C] order of `logits`.
   */
  crossEntropyBackward(grad: View, logits: View, target: View, lse: View, ignoreIndex: number, labelSmoothing: number): Storage;

  /**
   * Applies one Adam or AdamW step to every target in place: param, expAvg, expAvgSq and (with amsgrad)
   * maxExpAvgSq are updated in their own storage, with the formulas of torch.optim.Adam and AdamW 1.13.
   */
  adamStep(targets: readonly AdamStepTarget[], options: AdamStepOptions, kernelOptions?: AdamKernelOptions): void;

  synchronize(): Promise<void>;
  memory(): MemoryStats;
  destroy(): Promise<void>;
}
