// The WebGPU backend: storages are GPU buffers, every op is a generated WGSL compute kernel, and
// dispatches are recorded into one command encoder that is submitted in batches.

import type {
  Backend, LayerNormGrads, LayerNormKernelOptions, LayerNormOutputs, MapKernel, MatmulEpilogue, MemoryStats, ReduceOp, ScaledMaskedSoftmaxOptions, View,
} from '../backend.js';
import { Storage } from '../backend.js';
import { quietly } from './quiet-wait.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import { hostArray } from '../../tensor/dtype.js';
import { Shape, contiguousStrides, isContiguous, numel } from '../../tensor/shape.js';
import { BufferPool } from './pool.js';
import { float16ToFloat32, float32ToFloat16 } from '../../tensor/float16.js';
import {
  FLOAT_DIVISION_LIMIT, GATHER_META, MAP_META, MAX_RANK, REDUCE_META, SCATTER_META, SOFTMAX_META,
  gatherKernel, mapKernel, mapVec4Eligible, mapVec4Kernel, reduceKernel, scatterAddKernel, softmaxKernel,
} from './kernels.js';
import { KernelRunner, layerNormBackward, layerNormForward } from './layernorm.js';
import type { CrossEntropyOutputs } from '../backend.js';
import { crossEntropyBackward, crossEntropyForward } from './cross-entropy.js';
import { scaledMaskedSoftmaxForward, softmaxBackward } from './softmax.js';
import { MATMUL_META, matmulKernel, matmulLoad, matmulTiling } from './matmul.js';
import { BindGroupCache, UNIFORM_BINDING_SIZE, layoutFromSource } from './bindings.js';
import { coalesceDims } from './coalesce.js';
import { adamStepWebGpu } from './optim.js';
import { reduceWebGpu } from './reduce.js';
import { rowScatterAdd } from './scatter.js';
import type { AdamKernelOptions, AdamStepOptions, AdamStepTarget } from '../backend.js';

/** Bytes of uniforms one dispatch may use; also the offset alignment WebGPU guarantees to accept. */
const UNIFORM_SLOT = UNIFORM_BINDING_SIZE;
/** Dispatches recorded before the encoder is submitted even without a readback, which bounds the uniform arena. */
const MAX_BATCH = 256;

/** Bytes per element in a GPU buffer: bool takes a u32. */
function elementBytes(dtype: DType): number {
  return dtype === 'float16' ? 2 : 4;
}

interface Binding {
  buffer: GPUBuffer;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly description: string;
  readonly workgroupSize: number;
  readonly maxWorkgroupsPerDim: number;
  readonly hasF16: boolean;

  private readonly pool: BufferPool;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly uniformBuffer: GPUBuffer;
  private readonly uniformData = new ArrayBuffer(UNIFORM_SLOT * MAX_BATCH);
  private readonly uniformWords = new Uint32Array(this.uniformData);
  /** Scratch uniforms of map(), reused because map() is the most frequent dispatch. */
  private readonly mapUniforms = new Uint32Array(MAP_META.rows * 4);
  private readonly mapUniformFloats = new Float32Array(this.mapUniforms.buffer);
  private readonly layouts = new Map<GPUComputePipeline, GPUBindGroupLayout>();
  private readonly bindGroups: BindGroupCache;
  /** The pipeline last set on the open pass, so that a run of one kernel sets it once. */
  private passPipeline: GPUComputePipeline | null = null;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  /**
   * The matmul blocking: the one for the adapter's kind ('auto'), or a forced one, so that tests can run the
   * GPU blocking on a CPU adapter and the reverse.
   */
  matmulProfile: 'auto' | 'software' | 'gpu' = 'auto';
  /** Compute dispatches recorded since the backend started, for tests and benchmarks that count them. */
  dispatchCount = 0;
  /** Buffers freed since the last submit: a queue write into one of them must wait for that submit. */
  private freedThisBatch = new Set<GPUBuffer>();
  private scratchBytes = UNIFORM_SLOT * MAX_BATCH;
  private errors: string[] = [];

  constructor(
    readonly device: GPUDevice,
    adapterInfo: string,
    /** The object that created the device; Dawn crashes if it is collected while the device lives. */
    readonly gpu: GPU,
  ) {
    const limits = device.limits;
    this.workgroupSize = Math.min(256, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
    this.workgroupSize = 2 ** Math.floor(Math.log2(this.workgroupSize));
    this.maxWorkgroupsPerDim = limits.maxComputeWorkgroupsPerDimension;
    this.hasF16 = device.features.has('shader-f16');
    this.description = adapterInfo;
    this.pool = new BufferPool(device, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.uniformBuffer = device.createBuffer({ size: UNIFORM_SLOT * MAX_BATCH, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.bindGroups = new BindGroupCache(device, this.uniformBuffer, MAX_BATCH);
  }

  recordError(message: string): void {
    this.errors.push(message);
  }

  /** Throws the first WebGPU error reported since the last check, so that a bad kernel never passes silently. */
  private throwRecordedErrors(): void {
    if (this.errors.length === 0) return;
    const [first] = this.errors;
    const more = this.errors.length - 1;
    this.errors = [];
    throw new Error(`WebGPU reported an error${more > 0 ? ` (and ${more} more)` : ''}: ${first}`);
  }

  supportsDType(dtype: DType): boolean {
    if (dtype === 'float64') return false;
    if (dtype === 'float16') return this.hasF16;
    return true;
  }

  // ---- storage ----

  allocate(dtype: DType, count: number): Storage {
    const bytes = Math.max(4, Math.ceil((count * elementBytes(dtype)) / 4) * 4);
    const buffer = this.pool.acquire(bytes);
    return new Storage(this, dtype, count, { buffer } satisfies Binding, buffer.size);
  }

  upload(dtype: DType, data: TypedArray): Storage {
    const storage = this.allocate(dtype, data.length);
    const { buffer } = storage.data as Binding;
    let bytes: ArrayBufferView;
    if (dtype === 'float16') bytes = float32ToFloat16(data);
    else if (dtype === 'bool') bytes = Uint32Array.from(data);
    else if (dtype === 'int32') bytes = data instanceof Int32Array ? data : Int32Array.from(data);
    else bytes = data instanceof Float32Array ? data : Float32Array.from(data);
    // A queue write lands before the commands still being recorded, so it must not reach a buffer
    // that those commands used before it was freed.
    if (this.freedThisBatch.has(buffer)) this.flush();
    if (bytes.byteLength > 0) {
      const padded = bytes.byteLength % 4 === 0 ? bytes : padTo4(bytes);
      this.device.queue.writeBuffer(buffer, 0, padded.buffer, padded.byteOffset, padded.byteLength);
    }
    return storage;
  }

  free(storage: Storage): void {
    const { buffer } = storage.data as Binding;
    this.freedThisBatch.add(buffer);
    this.pool.release(buffer);
  }

  async read(view: View): Promise<TypedArray> {
    const dtype = view.storage.dtype;
    const count = numel(view.shape);
    let source = view;
    let temporary: Storage | null = null;
    if (!isContiguous(view.shape, view.strides) || count === 0) {
      temporary = this.allocate(dtype, count);
      source = { storage: temporary, shape: view.shape, strides: contiguousStrides(view.shape), offset: 0 };
      this.copy(view, source);
    }
    const byteLength = Math.ceil((count * elementBytes(dtype)) / 4) * 4;
    const out = hostArray(dtype, count);
    if (count === 0) {
      if (temporary) this.free(temporary);
      return out;
    }
    const staging = this.device.createBuffer({ size: byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const start = source.offset * elementBytes(dtype);
    const encoder = this.commandEncoder();
    this.endPass();
    if (start % 4 === 0) {
      encoder.copyBufferToBuffer((source.storage.data as Binding).buffer, start, staging, 0, byteLength);
    } else {
      // float16 at an odd offset: copy through an aligned contiguous buffer first.
      const aligned = this.allocate(dtype, count);
      this.copy(source, { storage: aligned, shape: view.shape, strides: contiguousStrides(view.shape), offset: 0 });
      this.endPass();
      encoder.copyBufferToBuffer((aligned.data as Binding).buffer, 0, staging, 0, byteLength);
      this.free(aligned);
    }
    if (temporary) this.free(temporary);
    this.flush();
    await quietly(staging.mapAsync(GPUMapMode.READ));
    this.throwRecordedErrors();
    const raw = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    if (dtype === 'float16') out.set(float16ToFloat32(new Uint16Array(raw, 0, count)));
    else if (dtype === 'bool') out.set(new Uint32Array(raw, 0, count));
    else if (dtype === 'int32') out.set(new Int32Array(raw, 0, count));
    else out.set(new Float32Array(raw, 0, count));
    return out;
  }

  private copy(src: View, dst: View): void {
    this.map(IDENTITY, [src], src.storage.dtype, dst);
  }

  // ---- kernels ----

  map(kernel: MapKernel, inputs: readonly (View | number)[], compute: DType, out: View, params: readonly number[] = []): void {
    const count = numel(out.shape);
    if (count === 0) return;
    checkRank('map', out.shape);
    const outBuffer = (out.storage.data as Binding).buffer;
    // WebGPU forbids binding one buffer as both read-only and writable in a dispatch, so an in-place
    // op computes into a temporary and copies back.
    const aliased = inputs.some((v) => typeof v !== 'number' && (v.storage.data as Binding).buffer === outBuffer);
    if (aliased) {
      const temp = this.allocate(out.storage.dtype, count);
      const tempView = { storage: temp, shape: out.shape, strides: contiguousStrides(out.shape), offset: 0 };
      this.map(kernel, inputs, compute, tempView, params);
      this.map(IDENTITY, [tempView], out.storage.dtype, out);
      this.free(temp);
      return;
    }
    // Merged dims leave fewer integer divisions per element in the strided kernel.
    const views = inputs.filter((v): v is View => typeof v !== 'number');
    const merged = coalesceDims(out.shape, [out.strides, ...views.map((v) => v.strides)]);
    const [outStrides, ...viewStrides] = merged.strides;
    const contiguous = [outStrides, ...viewStrides].every((s) => isContiguous(merged.shape, s));
    const sig = {
      kernel,
      compute,
      out: out.storage.dtype,
      inputs: inputs.map((v) => (typeof v === 'number' ? ('scalar' as const) : v.storage.dtype)),
      contiguous,
      rank: contiguous ? 1 : merged.shape.length,
      floatDivision: count < FLOAT_DIVISION_LIMIT,
      // Four elements of the innermost dim per invocation share one split of the index into coordinates.
      run: !contiguous && merged.shape[merged.shape.length - 1] % 4 === 0 ? 4 : 1,
    };
    // Four float32 elements per invocation where the count, the offsets and the expression allow.
    const vec4 = contiguous && count % 4 === 0 && compute === 'float32' && sig.out === 'float32' && out.offset % 4 === 0 &&
      views.every((v) => v.storage.dtype === 'float32' && v.offset % 4 === 0) && mapVec4Eligible(kernel);
    let layout = contiguous ? 'contiguous' : `rank${sig.rank}:${sig.floatDivision ? 'f32' : 'u32'}:run${sig.run}`;
    if (vec4) layout = 'vec4';
    const key = `map:${kernel.name}:${compute}:${sig.out}:${sig.inputs.join(',')}:${layout}`;
    const pipeline = this.pipeline(key, () => (vec4 ? mapVec4Kernel(sig, this.workgroupSize) : mapKernel(sig, this.workgroupSize)));
    const u = this.mapUniforms.fill(0);
    const f = this.mapUniformFloats;
    u[0] = count / sig.run;
    u[1] = merged.shape.length;
    params.forEach((p, k) => (f[MAP_META.params * 4 + k] = p));
    merged.shape.forEach((d, k) => {
      const size = k === merged.shape.length - 1 ? d / sig.run : d;
      u[MAP_META.shape * 4 + k] = size;
      f[MAP_META.reciprocals * 4 + k] = 1 / size;
    });
    outStrides.forEach((s, k) => (u[MAP_META.outStrides * 4 + k] = s));
    u[MAP_META.offsets * 4] = out.offset;
    const buffers: GPUBuffer[] = [outBuffer];
    let viewIndex = 0;
    inputs.forEach((v, k) => {
      if (typeof v === 'number') {
        f[MAP_META.scalars * 4 + k] = v;
        return;
      }
      viewStrides[viewIndex++].forEach((s, d) => (u[(MAP_META.inStrides + 2 * k) * 4 + d] = s));
      u[MAP_META.offsets * 4 + k + 1] = v.offset;
      buffers.push((v.storage.data as Binding).buffer);
    });
    const invocations = vec4 ? count / 4 : count / sig.run;
    this.dispatch(pipeline, u, buffers, this.grid(Math.ceil(invocations / this.workgroupSize)));
  }

  reduce(op: ReduceOp, x: View, reducedDims: number, outDType: DType): Storage {
    checkRank('reduce', x.shape);
    if (op === 'sum' || op === 'max' || op === 'min') return reduceWebGpu(this.kernelRunner(), op, x, reducedDims, outDType);
    const split = x.shape.length - reducedDims;
    const rows = numel(x.shape.slice(0, split));
    const size = numel(x.shape.slice(split));
    const out = this.allocate(outDType, rows);
    if (rows === 0) return out;
    // Long rows get a workgroup each unless there are enough rows to fill a workgroup: then one invocation
    // walks each row, since barriers cost about 100 µs per workgroup on CPU adapters such as lavapipe.
    const perRow = size >= 64 && rows < this.workgroupSize;
    const key = `reduce:${op}:${x.storage.dtype}:${outDType}:${perRow}`;
    const pipeline = this.pipeline(key, () => reduceKernel(op, x.storage.dtype, outDType, perRow, this.workgroupSize));
    const u = new Uint32Array(REDUCE_META.rows * 4);
    u.set([rows, size, x.shape.length, split]);
    x.shape.forEach((d, k) => (u[REDUCE_META.shape * 4 + k] = d));
    x.strides.forEach((s, k) => (u[REDUCE_META.strides * 4 + k] = s));
    u[REDUCE_META.offset * 4] = x.offset;
    const groups = perRow ? rows : Math.ceil(rows / this.workgroupSize);
    this.dispatch(pipeline, u, [this.buffer(out), this.buffer(x.storage)], this.grid(groups));
    return out;
  }

  matmul(a: View, b: View, epilogue: MatmulEpilogue = {}): Storage {
    checkRank('matmul', a.shape);
    const rank = a.shape.length;
    const [m, k, n] = [a.shape[rank - 2], a.shape[rank - 1], b.shape[rank - 1]];
    const batchShape = a.shape.slice(0, rank - 2);
    const batch = numel(batchShape);
    const dtype = a.storage.dtype;
    const out = this.allocate(dtype, batch * m * n);
    if (batch * m * n === 0) return out;
    const { bias, activation } = epilogue;
    const pre = epilogue.preActivation;
    if (activation && !pre) throw new Error('matmul: an activation needs a preActivation storage');
    if (k === 0 && !bias && !activation) {
      this.map(FILL, [], dtype, { storage: out, shape: [batch * m * n], strides: [1], offset: 0 }, [0]);
      return out;
    }
    const load = matmulLoad(b.strides, b.offset);
    const software = this.matmulProfile === 'auto' ? this.isSoftwareAdapter() : this.matmulProfile === 'software';
    const tiling = matmulTiling(this.device.limits, m, n, this.device.adapterInfo.subgroupMinSize, software);
    const kind = { bias: bias !== undefined, activation: activation ?? null };
    const key = `matmul:${dtype}:${load}:${tiling.lanes}x${tiling.rows}x${tiling.groups}:${kind.bias ? 'bias' : ''}:${kind.activation ?? ''}`;
    const pipeline = this.pipeline(key, () => matmulKernel(dtype, load, tiling, kind));
    const buffers = [this.buffer(out), this.buffer(a.storage), this.buffer(b.storage)];
    if (bias) buffers.push(this.buffer(bias.storage));
    if (pre) buffers.push(this.buffer(pre));
    const rowBlocks = Math.ceil(m / tiling.rows);
    const colBlocks = Math.ceil(n / (4 * tiling.groups * tiling.lanes));
    if (rowBlocks > this.maxWorkgroupsPerDim || colBlocks > this.maxWorkgroupsPerDim) {
      throw new Error(`matmul: output of ${m}x${n} needs more than ${this.maxWorkgroupsPerDim} workgroups per dimension; split the operands`);
    }
    for (let base = 0; base < batch; base += this.maxWorkgroupsPerDim) {
      const u = new Uint32Array(MATMUL_META.rows * 4);
      u.set([m, n, k, batchShape.length]);
      u.set([a.strides[rank - 2], a.strides[rank - 1], b.strides[rank - 2], b.strides[rank - 1]], MATMUL_META.strides * 4);
      u.set([a.offset, b.offset, base], MATMUL_META.offsets * 4);
      batchShape.forEach((d, i) => (u[MATMUL_META.batchShape * 4 + i] = d));
      a.strides.slice(0, rank - 2).forEach((s, i) => (u[MATMUL_META.aBatch * 4 + i] = s));
      b.strides.slice(0, rank - 2).forEach((s, i) => (u[MATMUL_META.bBatch * 4 + i] = s));
      if (bias) u.set([bias.offset, bias.strides[0]], MATMUL_META.bias * 4);
      const grid: [number, number, number] = [rowBlocks, colBlocks, Math.min(batch - base, this.maxWorkgroupsPerDim)];
      this.dispatch(pipeline, u, buffers, grid);
    }
    return out;
  }

  softmax(x: View, log: boolean): Storage {
    checkRank('softmax', x.shape);
    const rank = x.shape.length;
    const width = x.shape[rank - 1];
    const rows = numel(x.shape.slice(0, rank - 1));
    const dtype = x.storage.dtype;
    const out = this.allocate(dtype, rows * width);
    if (rows * width === 0) return out;
    const perInvocation = rows >= this.workgroupSize;
    const pipeline = this.pipeline(`softmax:${dtype}:${log}:${perInvocation}`, () => softmaxKernel(dtype, log, this.workgroupSize, perInvocation));
    const u = new Uint32Array(SOFTMAX_META.rows * 4);
    u.set([rows, width, rank - 1]);
    x.shape.slice(0, rank - 1).forEach((d, i) => (u[SOFTMAX_META.shape * 4 + i] = d));
    x.strides.slice(0, rank - 1).forEach((s, i) => (u[SOFTMAX_META.strides * 4 + i] = s));
    u.set([x.offset, x.strides[rank - 1]], SOFTMAX_META.offsets * 4);
    const groups = perInvocation ? Math.ceil(rows / this.workgroupSize) : rows;
    this.dispatch(pipeline, u, [this.buffer(out), this.buffer(x.storage)], this.grid(groups));
    return out;
  }

  scaledMaskedSoftmax(x: View, options: ScaledMaskedSoftmaxOptions): Storage {
    return scaledMaskedSoftmaxForward(this.kernelRunner(), x, options);
  }

  softmaxBackward(y: View, grad: View, scale: number, log: boolean): Storage {
    return softmaxBackward(this.kernelRunner(), y, grad, scale, log);
  }

  gather(x: View, dim: number, index: View): Storage {
    checkRank('gather', index.shape);
    const count = numel(index.shape);
    const dtype = x.storage.dtype;
    const out = this.allocate(dtype, count);
    if (count === 0) return out;
    const pipeline = this.pipeline(`gather:${dtype}`, () => gatherKernel(dtype, this.workgroupSize));
    const u = new Uint32Array(GATHER_META.rows * 4);
    u.set([count, index.shape.length, dim, x.shape[dim]]);
    index.shape.forEach((d, i) => (u[GATHER_META.shape * 4 + i] = d));
    x.strides.forEach((s, i) => (u[GATHER_META.xStrides * 4 + i] = s));
    index.strides.forEach((s, i) => (u[GATHER_META.indexStrides * 4 + i] = s));
    u.set([x.offset, index.offset], GATHER_META.offsets * 4);
    this.dispatch(pipeline, u, [this.buffer(out), this.buffer(x.storage), this.buffer(index.storage)], this.grid(Math.ceil(count / this.workgroupSize)));
    return out;
  }

  scatterAdd(src: View, dim: number, index: View, shape: Shape): Storage {
    checkRank('scatterAdd', shape);
    const count = numel(shape);
    const dtype = src.storage.dtype;
    if (count === 0) return this.allocate(dtype, count);
    const rows = rowScatterAdd(this.kernelRunner(), src, dim, index, shape);
    if (rows) return rows;
    const out = this.allocate(dtype, count);
    const pipeline = this.pipeline(`scatterAdd:${dtype}`, () => scatterAddKernel(dtype, this.workgroupSize));
    const u = new Uint32Array(SCATTER_META.rows * 4);
    u.set([count, shape.length, dim]);
    shape.forEach((d, i) => (u[SCATTER_META.outShape * 4 + i] = d));
    index.shape.forEach((d, i) => (u[SCATTER_META.indexShape * 4 + i] = d));
    src.strides.forEach((s, i) => (u[SCATTER_META.srcStrides * 4 + i] = s));
    index.strides.forEach((s, i) => (u[SCATTER_META.indexStrides * 4 + i] = s));
    u.set([src.offset, index.offset], SCATTER_META.offsets * 4);
    this.dispatch(pipeline, u, [this.buffer(out), this.buffer(src.storage), this.buffer(index.storage)], this.grid(Math.ceil(count / this.workgroupSize)));
    return out;
  }

  crossEntropy(logits: View, target: View, ignoreIndex: number, labelSmoothing: number): CrossEntropyOutputs {
    return crossEntropyForward(this.kernelRunner(), logits, target, ignoreIndex, labelSmoothing);
  }

  crossEntropyBackward(grad: View, logits: View, target: View, lse: View, ignoreIndex: number, labelSmoothing: number): Storage {
    return crossEntropyBackward(this.kernelRunner(), grad, logits, target, lse, ignoreIndex, labelSmoothing);
  }

  layerNorm(x: View, width: number, weight: View | null, bias: View | null, eps: number, options?: LayerNormKernelOptions): LayerNormOutputs {
    return layerNormForward(this.kernelRunner(), x, width, weight, bias, eps, options);
  }

  layerNormBackward(
    grad: View, x: View, width: number, weight: View | null, shiftedMean: View, rstd: View, withBias: boolean, options?: LayerNormKernelOptions,
  ): LayerNormGrads {
    return layerNormBackward(this.kernelRunner(), grad, x, width, weight, shiftedMean, rstd, withBias, options);
  }

  adamStep(targets: readonly AdamStepTarget[], options: AdamStepOptions, kernelOptions?: AdamKernelOptions): void {
    adamStepWebGpu(this.kernelRunner(), this.device.limits.maxStorageBuffersPerShaderStage, targets, options, kernelOptions);
  }

  /** Returns whether the adapter runs on the CPU (lavapipe, SwiftShader), which the kernels map work for differently. */
  isSoftwareAdapter(): boolean {
    const info = this.device.adapterInfo as GPUAdapterInfo | undefined;
    return info?.isFallbackAdapter === true || info?.architecture === 'software';
  }

  /** Returns the allocation, compilation and dispatch entry points that kernel families in other files use. */
  private kernelRunner(): KernelRunner {
    return {
      workgroupSize: this.workgroupSize,
      profile: { workgroupSize: this.workgroupSize, software: this.isSoftwareAdapter() },
      hasF16: this.hasF16,
      description: this.description,
      allocate: (dtype, count) => this.allocate(dtype, count),
      free: (storage) => this.free(storage),
      run: (key, source, uniforms, buffers, groups) => this.dispatch(this.pipeline(key, source), uniforms, buffers, this.grid(groups)),
    };
  }

  // ---- dispatch and batching ----

  private buffer(storage: Storage): GPUBuffer {
    return (storage.data as Binding).buffer;
  }

  private pipeline(key: string, source: () => string): GPUComputePipeline {
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = source();
      const module = this.device.createShaderModule({ code, label: key });
      const bindGroupLayout = layoutFromSource(this.device, code, key);
      const layout = this.device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout], label: key });
      pipeline = this.device.createComputePipeline({ layout, compute: { module, entryPoint: 'main' }, label: key });
      this.pipelines.set(key, pipeline);
      this.layouts.set(pipeline, bindGroupLayout);
    }
    return pipeline;
  }

  /** Folds a count of workgroups into (x, y) so that neither exceeds the adapter's per-dimension limit. */
  private grid(groups: number): [number, number, number] {
    const x = Math.min(groups, this.maxWorkgroupsPerDim);
    return [x, Math.ceil(groups / x), 1];
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private dispatch(pipeline: GPUComputePipeline, uniforms: Uint32Array, buffers: GPUBuffer[], grid: [number, number, number]): void {
    if (uniforms.byteLength > UNIFORM_SLOT) {
      throw new Error(`WebGPU backend: a kernel passed ${uniforms.byteLength} bytes of uniforms, more than the ${UNIFORM_SLOT}-byte slot`);
    }
    if (this.dispatches === MAX_BATCH) this.flush();
    this.dispatches++;
    this.dispatchCount++;
    const { group: bindGroup, slot } = this.bindGroups.acquire(this.layouts.get(pipeline)!, buffers);
    this.uniformWords.set(uniforms, (slot * UNIFORM_SLOT) / 4);
    const encoder = this.commandEncoder();
    if (!this.pass) {
      this.pass = encoder.beginComputePass();
      this.passPipeline = null;
    }
    if (this.passPipeline !== pipeline) {
      this.pass.setPipeline(pipeline);
      this.passPipeline = pipeline;
    }
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
  }

  /** Submits everything recorded so far, with the uniforms it needs written first. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    // The taken slots may be scattered below slotsInUse. The free slots between them carry stale bytes,
    // which no dispatch of this batch reads.
    const slots = this.bindGroups.slotsInUse;
    if (slots > 0) this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformData, 0, slots * UNIFORM_SLOT);
    this.device.queue.submit([this.encoder.finish()]);
    this.bindGroups.endBatch();
    this.encoder = null;
    this.dispatches = 0;
    this.freedThisBatch.clear();
  }

  async synchronize(): Promise<void> {
    this.flush();
    await quietly(this.device.queue.onSubmittedWorkDone());
    this.throwRecordedErrors();
  }

  memory(): MemoryStats {
    return { liveBytes: this.pool.liveBytes, pooledBytes: this.pool.pooledBytes, peakBytes: this.pool.peakBytes };
  }

  /** Bytes the backend keeps for itself (the uniform arena), outside liveBytes. */
  get reservedBytes(): number {
    return this.scratchBytes;
  }

  async destroy(): Promise<void> {
    await this.synchronize();
    this.pool.destroy();
    this.uniformBuffer.destroy();
    this.device.destroy();
  }
}

function checkRank(op: string, shape: Shape): void {
  if (shape.length > MAX_RANK) {
    throw new Error(`${op}: tensors of rank ${shape.length} are not supported on WebGPU (at most ${MAX_RANK} dims); reshape to fewer dims`);
  }
}

function padTo4(bytes: ArrayBufferView): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return out;
}

const IDENTITY: MapKernel = { name: 'identity', arity: 1, wgsl: 'a', js: (a) => a };
const FILL: MapKernel = { name: 'fill', arity: 0, wgsl: 'p0', js: (_a, _b, _c, p) => p[0] };
