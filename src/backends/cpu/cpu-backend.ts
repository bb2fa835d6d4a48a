// The CPU backend: plain TypeScript loops over typed arrays, in float64 or float32. It is the fallback
// where no WebGPU adapter exists and the oracle that every WGSL kernel is tested against.

import erf from '@stdlib/math-base-special-erf';
import {
  Backend, LayerNormGrads, LayerNormOutputs, MapKernel, MatmulActivation, MatmulEpilogue, MemoryStats, ReduceOp, ScaledMaskedSoftmaxOptions, Storage, View,
} from '../backend.js';
import { DType, TypedArray, hostArray } from '../../tensor/dtype.js';
import { Shape, numel } from '../../tensor/shape.js';
import { roundToFloat16 } from '../../tensor/float16.js';
import { layerNormBackwardCpu, layerNormCpu } from './layernorm.js';
import { adamStepCpu } from './adam.js';
import type { AdamStepOptions, AdamStepTarget } from '../backend.js';
import type { CrossEntropyOutputs } from '../backend.js';
import { crossEntropyBackwardCpu, crossEntropyCpu } from './cross-entropy.js';
import { statsDType } from './layernorm.js';
import { scaledMaskedSoftmaxCpu, softmaxBackwardCpu } from './softmax.js';

/** Returns the storage offset of every element of a view, in row-major order. */
export function viewOffsets(view: Pick<View, 'shape' | 'strides' | 'offset'>): Int32Array {
  const { shape, strides } = view;
  const n = numel(shape);
  const out = new Int32Array(n);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let offset = view.offset;
  for (let i = 0; i < n; i++) {
    out[i] = offset;
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      offset += strides[d];
      if (index[d] < shape[d]) break;
      offset -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

/** Applies an activation of matmul's epilogue, with the formulas of the elementwise gelu kernels. */
function activate(activation: MatmulActivation, x: number): number {
  if (activation === 'gelu') return x * 0.5 * (1 + erf(x * Math.SQRT1_2));
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function store(dtype: DType, value: number | boolean): number {
  if (dtype === 'bool') return value ? 1 : 0;
  if (dtype === 'int32') return Number(value) | 0;
  return Number(value);
}

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description = 'CPU (TypeScript)';
  private live = 0;
  private peak = 0;

  supportsDType(_dtype: DType): boolean {
    return true;
  }

  allocate(dtype: DType, count: number): Storage {
    return this.wrap(dtype, hostArray(dtype, count));
  }

  upload(dtype: DType, data: TypedArray): Storage {
    const copy = hostArray(dtype, data.length);
    copy.set(data);
    return this.wrap(dtype, copy);
  }

  private wrap(dtype: DType, array: TypedArray): Storage {
    if (dtype === 'float16') array.set(roundToFloat16(array));
    this.live += array.byteLength;
    this.peak = Math.max(this.peak, this.live);
    return new Storage(this, dtype, array.length, array, array.byteLength);
  }

  free(storage: Storage): void {
    this.live -= storage.bytes;
  }

  async read(view: View): Promise<TypedArray> {
    return this.readSync(view);
  }

  readSync(view: View): TypedArray {
    const src = view.storage.data as TypedArray;
    const offsets = viewOffsets(view);
    const out = hostArray(view.storage.dtype, offsets.length);
    for (let i = 0; i < offsets.length; i++) out[i] = src[offsets[i]];
    return out;
  }

  map(kernel: MapKernel, inputs: readonly (View | number)[], compute: DType, out: View, params: readonly number[] = []): void {
    const dst = out.storage.data as TypedArray;
    const outOffsets = viewOffsets(out);
    const n = outOffsets.length;
    const round = compute === 'float32' || compute === 'float16' ? Math.fround : compute === 'int32' ? (x: number) => x | 0 : (x: number) => x;
    // Each operand becomes a function of the element index: a constant for a plain number.
    const operands = [0, 1, 2].map((k): ((i: number) => number) => {
      const input = inputs[k];
      if (input === undefined) return () => 0;
      if (typeof input === 'number') {
        const value = round(input);
        return () => value;
      }
      const src = input.storage.data as TypedArray;
      const offsets = viewOffsets(input);
      return (i) => round(src[offsets[i]]);
    });
    const [a, b, c] = operands;
    const f = kernel.js;
    const dtype = out.storage.dtype;
    // Inputs are read in full before anything is written, so an output that aliases an input is safe.
    const results = new Float64Array(n);
    for (let i = 0; i < n; i++) results[i] = store(dtype, f(a(i), b(i), c(i), params));
    const values = dtype === 'float16' ? roundToFloat16(results) : results;
    for (let i = 0; i < n; i++) dst[outOffsets[i]] = values[i];
  }

  reduce(op: ReduceOp, x: View, reducedDims: number, outDType: DType): Storage {
    const src = x.storage.data as TypedArray;
    const offsets = viewOffsets(x);
    const split = x.shape.length - reducedDims;
    const outCount = numel(x.shape.slice(0, split));
    const reduceSize = numel(x.shape.slice(split));
    const out = hostArray(outDType, outCount);
    for (let r = 0; r < outCount; r++) {
      const base = r * reduceSize;
      let acc = op === 'sum' ? 0 : op === 'max' || op === 'argmax' ? -Infinity : Infinity;
      let at = 0;
      for (let j = 0; j < reduceSize; j++) {
        const v = src[offsets[base + j]];
        if (op === 'sum') acc += v;
        else if ((op === 'max' || op === 'argmax') && (v > acc || Number.isNaN(v)) && !Number.isNaN(acc)) { acc = v; at = j; }
        else if ((op === 'min' || op === 'argmin') && (v < acc || Number.isNaN(v)) && !Number.isNaN(acc)) { acc = v; at = j; }
      }
      out[r] = op === 'argmax' || op === 'argmin' ? at : store(outDType, acc);
    }
    return this.wrap(outDType, out);
  }

  matmul(a: View, b: View, epilogue: MatmulEpilogue = {}): Storage {
    const rank = a.shape.length;
    const m = a.shape[rank - 2];
    const k = a.shape[rank - 1];
    const n = b.shape[rank - 1];
    const batchShape = a.shape.slice(0, rank - 2);
    const batch = numel(batchShape);
    const aBatch = viewOffsets({ shape: batchShape, strides: a.strides.slice(0, rank - 2), offset: a.offset });
    const bBatch = viewOffsets({ shape: batchShape, strides: b.strides.slice(0, rank - 2), offset: b.offset });
    const [aRow, aCol] = [a.strides[rank - 2], a.strides[rank - 1]];
    const [bRow, bCol] = [b.strides[rank - 2], b.strides[rank - 1]];
    const A = a.storage.data as TypedArray;
    const B = b.storage.data as TypedArray;
    const dtype = a.storage.dtype;
    const out = hostArray(dtype, batch * m * n);
    const bias = epilogue.bias ? (epilogue.bias.storage.data as TypedArray) : null;
    const [biasOffset, biasStride] = epilogue.bias ? [epilogue.bias.offset, epilogue.bias.strides[0]] : [0, 0];
    if (epilogue.activation && !epilogue.preActivation) throw new Error('matmul: an activation needs a preActivation storage');
    const pre = epilogue.activation ? (epilogue.preActivation?.data as TypedArray) : null;
    for (let t = 0; t < batch; t++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          let pa = aBatch[t] + i * aRow;
          let pb = bBatch[t] + j * bCol;
          for (let p = 0; p < k; p++) {
            acc += A[pa] * B[pb];
            pa += aCol;
            pb += bRow;
          }
          if (bias) acc += bias[biasOffset + j * biasStride];
          if (pre) {
            pre[(t * m + i) * n + j] = acc;
            acc = activate(epilogue.activation as MatmulActivation, acc);
          }
          out[(t * m + i) * n + j] = acc;
        }
      }
    }
    if (pre && dtype === 'float16') pre.set(roundToFloat16(pre));
    return this.wrap(dtype, out);
  }

  softmax(x: View, log: boolean): Storage {
    const src = x.storage.data as TypedArray;
    const offsets = viewOffsets(x);
    const width = x.shape[x.shape.length - 1];
    const out = hostArray(x.storage.dtype, offsets.length);
    for (let base = 0; base < offsets.length; base += width) {
      let max = -Infinity;
      for (let j = 0; j < width; j++) max = Math.max(max, src[offsets[base + j]]);
      // A row of -Infinity (everything masked) gives NaN, as in PyTorch; max stays finite otherwise.
      let sum = 0;
      for (let j = 0; j < width; j++) sum += Math.exp(src[offsets[base + j]] - max);
      const logSum = Math.log(sum);
      for (let j = 0; j < width; j++) {
        const shifted = src[offsets[base + j]] - max;
        out[base + j] = log ? shifted - logSum : Math.exp(shifted) / sum;
      }
    }
    return this.wrap(x.storage.dtype, out);
  }

  scaledMaskedSoftmax(x: View, options: ScaledMaskedSoftmaxOptions): Storage {
    return this.wrap(x.storage.dtype, scaledMaskedSoftmaxCpu(x, options));
  }

  softmaxBackward(y: View, grad: View, scale: number, log: boolean): Storage {
    return this.wrap(y.storage.dtype, softmaxBackwardCpu(y, grad, scale, log));
  }

  gather(x: View, dim: number, index: View): Storage {
    const src = x.storage.data as TypedArray;
    const idx = index.storage.data as TypedArray;
    const idxOffsets = viewOffsets(index);
    const shape = index.shape;
    const count = idxOffsets.length;
    const out = hostArray(x.storage.dtype, count);
    const coords = new Array<number>(shape.length).fill(0);
    for (let i = 0; i < count; i++) {
      let offset = x.offset;
      for (let d = 0; d < shape.length; d++) {
        const c = d === dim ? idx[idxOffsets[i]] : coords[d];
        offset += c * x.strides[d];
      }
      out[i] = src[offset];
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++coords[d] < shape[d]) break;
        coords[d] = 0;
      }
    }
    return this.wrap(x.storage.dtype, out);
  }

  scatterAdd(src: View, dim: number, index: View, shape: Shape): Storage {
    const values = (src.storage.data as TypedArray);
    const srcOffsets = viewOffsets(src);
    const idx = index.storage.data as TypedArray;
    const idxOffsets = viewOffsets(index);
    const outStrides = shape.map((_, d) => numel(shape.slice(d + 1)));
    const out = new Float64Array(numel(shape));
    const coords = new Array<number>(index.shape.length).fill(0);
    for (let i = 0; i < idxOffsets.length; i++) {
      let offset = 0;
      for (let d = 0; d < coords.length; d++) offset += (d === dim ? idx[idxOffsets[i]] : coords[d]) * outStrides[d];
      out[offset] += values[srcOffsets[i]];
      for (let d = coords.length - 1; d >= 0; d--) {
        if (++coords[d] < index.shape[d]) break;
        coords[d] = 0;
      }
    }
    const result = hostArray(src.storage.dtype, out.length);
    result.set(out);
    return this.wrap(src.storage.dtype, result);
  }

  layerNorm(x: View, width: number, weight: View | null, bias: View | null, eps: number): LayerNormOutputs {
    const result = layerNormCpu(x, width, weight, bias, eps);
    return {
      out: this.wrap(x.storage.dtype, result.out),
      shiftedMean: this.wrap(result.statsDType, result.shiftedMean),
      rstd: this.wrap(result.statsDType, result.rstd),
    };
  }

  layerNormBackward(grad: View, x: View, width: number, weight: View | null, shiftedMean: View, rstd: View, withBias: boolean): LayerNormGrads {
    const result = layerNormBackwardCpu(grad, x, width, weight, shiftedMean, rstd, withBias);
    const dtype = x.storage.dtype;
    return {
      dx: this.wrap(dtype, result.dx),
      dweight: result.dweight && this.wrap(dtype, result.dweight),
      dbias: result.dbias && this.wrap(dtype, result.dbias),
    };
  }

  crossEntropy(logits: View, target: View, ignoreIndex: number, labelSmoothing: number): CrossEntropyOutputs {
    const result = crossEntropyCpu(logits, target, ignoreIndex, labelSmoothing);
    return { loss: this.wrap(logits.storage.dtype, result.loss), lse: this.wrap(statsDType(logits.storage.dtype), result.lse) };
  }

  crossEntropyBackward(grad: View, logits: View, target: View, lse: View, ignoreIndex: number, labelSmoothing: number): Storage {
    return this.wrap(logits.storage.dtype, crossEntropyBackwardCpu(grad, logits, target, lse, ignoreIndex, labelSmoothing));
  }

  adamStep(targets: readonly AdamStepTarget[], options: AdamStepOptions): void {
    adamStepCpu(targets, options);
  }

  async synchronize(): Promise<void> {}

  memory(): MemoryStats {
    return { liveBytes: this.live, pooledBytes: 0, peakBytes: this.peak };
  }

  async destroy(): Promise<void> {}
}
