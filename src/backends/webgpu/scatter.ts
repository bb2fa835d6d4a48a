// scatterAdd for the index-select layout of an embedding backward. The index varies along dim 0 only,
// so one int32 per source row names the output row that the whole source row adds into.

import type { Storage, View } from '../backend.js';
import type { DType } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import { coalesceDims } from './coalesce.js';
import type { KernelRunner } from './layernorm.js';
import { chunkCount, reduceWebGpu } from './reduce.js';
import { computeType, convert, storageType, usesF16 } from './wgsl.js';

/**
 * Layout of the uniform rows, counted in loaded elements (vec4s or scalars): w[0] = (outCount, width,
 * chunkLength, chunks), w[1] = (source rows, source row stride, source column stride, source offset),
 * w[2] = (index stride, index offset).
 */
export const ROW_SCATTER_META = { header: 0, source: 1, index: 2, rows: 3 };

/**
 * out[chunk * outCount + q * width + j] = sum over k in the chunk with index[k] = q of src[k, j], in
 * increasing k: one invocation per (output element, chunk of source rows). Neighbouring invocations take
 * neighbouring columns of one output row, so they read one index entry and neighbouring source elements.
 */
export function rowScatterAddKernel(dtype: DType, out: DType, vec4: boolean, workgroupSize: number): string {
  const m = ROW_SCATTER_META;
  const c = vec4 ? 'vec4<f32>' : computeType(dtype);
  const loaded = vec4 ? 'vec4<f32>' : storageType(dtype);
  const written = vec4 ? 'vec4<f32>' : storageType(out);
  return `${usesF16([dtype, out])}struct Uniforms { w: array<vec4<u32>, ${m.rows}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
@group(0) @binding(1) var<storage, read_write> out: array<${written}>;
@group(0) @binding(2) var<storage, read> src: array<${loaded}>;
@group(0) @binding(3) var<storage, read> index: array<i32>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${workgroupSize}u;
  let outCount = uniforms.w[0].x;
  if (i >= outCount * uniforms.w[0].w) { return; }
  let element = i % outCount;
  let q = i32(element / uniforms.w[0].y);
  let column = element % uniforms.w[0].y;
  let first = (i / outCount) * uniforms.w[0].z;
  let last = min(first + uniforms.w[0].z, uniforms.w[${m.source}].x);

  let rowStride = uniforms.w[${m.source}].y;
  let columnOffset = uniforms.w[${m.source}].w + column * uniforms.w[${m.source}].z;
  let indexStride = uniforms.w[${m.index}].x;
  let indexOffset = uniforms.w[${m.index}].y;
  var acc = ${c}(0);
  for (var k = first; k < last; k++) {
    if (index[indexOffset + k * indexStride] == q) { acc += ${vec4 ? '' : c}(src[columnOffset + k * rowStride]); }
  }
  out[i] = ${vec4 ? 'acc' : convert('acc', c, out)};
}`;
}

/**
 * Runs scatterAdd with the row kernel and returns the output storage, or returns null so that the caller
 * runs the general kernel. The row kernel needs dim 0, an index that varies along dim 0 only, and source
 * dims after the first that coalesce to one.
 */
export function rowScatterAdd(runner: KernelRunner, src: View, dim: number, index: View, shape: readonly number[]): Storage | null {
  if (dim !== 0 || shape.length === 0 || index.shape.length !== src.shape.length) return null;
  if (index.shape.some((d, k) => d !== src.shape[k]) || src.shape.some((d, k) => k > 0 && d !== shape[k])) return null;
  if (index.strides.some((s, d) => d > 0 && s !== 0 && index.shape[d] > 1)) return null;
  const inner = coalesceDims(src.shape.slice(1), [src.strides.slice(1)]);
  if (inner.shape.length !== 1) return null;
  const dtype = src.storage.dtype;
  let width = inner.shape[0];
  let columnStride = inner.strides[0][0];
  let rowStride = src.strides[0];
  let offset = src.offset;
  const vec4 = dtype === 'float32' && columnStride === 1 && width % 4 === 0 && rowStride % 4 === 0 && offset % 4 === 0;
  if (vec4) {
    width /= 4;
    rowStride /= 4;
    offset /= 4;
  }
  const outRows = shape[0];
  const sourceRows = src.shape[0];
  const outCount = outRows * width;
  // Chunks only until the output fills one workgroup, because every chunk adds a partial output as large
  // as the whole output. On lavapipe one pass over [2048, 64] into [65, 64] beat 8 or 45 chunks.
  // NOTE: measured on lavapipe only, and a GPU with many cores may prefer more chunks.
  const chunks = chunkCount(sourceRows, outCount, runner.workgroupSize);
  const chunkLength = Math.max(1, Math.ceil(sourceRows / chunks));
  const used = Math.max(1, Math.ceil(sourceRows / chunkLength));

  // With several chunks, the partial sums [chunks, out] are summed by the reduction kernel, in f32.
  const count = numel(shape);
  const partialDType: DType = used === 1 ? dtype : computeType(dtype) === 'f32' ? 'float32' : dtype;
  const target = runner.allocate(partialDType, used * count);
  const u = new Uint32Array(ROW_SCATTER_META.rows * 4);
  u.set([outCount, width, chunkLength, used]);
  u.set([sourceRows, rowStride, columnStride, offset], ROW_SCATTER_META.source * 4);
  u.set([index.strides[0], index.offset], ROW_SCATTER_META.index * 4);
  const key = `rowScatterAdd:${dtype}:${partialDType}:${vec4 ? 'vec4' : 'scalar'}`;
  const buffers = [bufferOf(target), bufferOf(src.storage), bufferOf(index.storage)];
  runner.run(key, () => rowScatterAddKernel(dtype, partialDType, vec4, runner.workgroupSize), u, buffers, Math.ceil((outCount * used) / runner.workgroupSize));
  if (used === 1) return target;
  const out = reduceWebGpu(runner, 'sum', { storage: target, shape: [count, used], strides: [1, count], offset: 0 }, 1, dtype);
  runner.free(target);
  return out;
}

function bufferOf(storage: Storage): GPUBuffer {
  return (storage.data as { buffer: GPUBuffer }).buffer;
}
