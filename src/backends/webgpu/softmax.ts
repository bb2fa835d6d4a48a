// Attention's fused softmax on WebGPU: softmax(scale * x + masks) with the causal mask taken from indices,
// and the one-kernel softmax backward that softmax, logSoftmax and the fused op share.
// Rows map to invocations as in the plain softmax kernel: one invocation per row when the rows alone fill a
// workgroup, because barriers are costly on CPU adapters, and one workgroup per row (shared-memory trees) otherwise.

import type { ScaledMaskedSoftmaxOptions, Storage, View } from '../backend.js';
import type { DType } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import type { KernelRunner } from './layernorm.js';
import { META_ACCESS, nanFunction, onlineSoftmaxLoop, reduceSharedFunction, storageType, usesF16 } from './wgsl.js';

/** Dims before the last that the kernels walk with per-dim strides (the backend's maximum rank minus one). */
const MAX_OUTER_RANK = 7;

/** Layout of the forward kernel's uniform rows. Each of shape and the three stride lists takes two rows. */
export const SCALED_SOFTMAX_META = { header: 0, params: 1, shape: 2, xStrides: 4, maskStrides: [6, 8], offsets: 10, lastStrides: 11, rows: 12 };
/** Layout of the backward kernel's uniform rows. */
export const SOFTMAX_BACKWARD_META = { header: 0, params: 1, shape: 2, yStrides: 4, gStrides: 6, offsets: 8, lastStrides: 9, rows: 10 };

function uniformsHeader(rows: number, dtypes: readonly DType[]): string {
  return `${usesF16(dtypes)}struct Uniforms { w: array<vec4<u32>, ${rows}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${META_ACCESS}
${nanFunction('f32')}
`;
}

/**
 * Emits a WGSL function `rowBases(row) -> vec3<u32>` that turns a row number into the storage offset of the row's
 * first element in up to three operands, from the outer shape and each operand's strides.
 */
function rowBasesFunction(shapeRow: number, strideRows: readonly number[], offsetsRow: number): string {
  const lanes = ['x', 'y', 'z'];
  const adds = strideRows.map((r, k) => `base.${lanes[k]} += coord * metaAt(${r}u, u32(d));`).join('\n    ');
  return `
fn rowBases(row: u32) -> vec3<u32> {
  var rem = row;
  var base = uniforms.w[${offsetsRow}].xyz;
  for (var d = i32(uniforms.w[0].z) - 1; d >= 0; d--) {
    let size = metaAt(${shapeRow}u, u32(d));
    let coord = rem % size;
    ${adds}
    rem = rem / size;
  }
  return base;
}`;
}

function entryPoint(workgroupSize: number, perInvocation: boolean): string {
  const row = perInvocation ? `gid.x + gid.y * nwg.x * ${workgroupSize}u` : 'wid.x + wid.y * nwg.x';
  return `@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${row};
  if (row >= uniforms.w[0].x) { return; }
  let width = uniforms.w[0].y;`;
}

// ---- forward ----

/**
 * y_j = exp(z_j - max) / sum_k exp(z_k - max) with z_j = scale * x_j + mask0_j + mask1_j, where a true bool
 * mask entry and, with causal set, key j > query i set z_j = -inf (i = row % queries). A row of -inf gives NaN.
 * With `perInvocation`, one invocation walks a row: an online max and sum in one pass, then the write pass.
 * Otherwise one workgroup takes a row and combines strided partial results in shared memory.
 * uniforms.w[0] = (rows, width, outer rank, queries), w[1] = (scale bits, causal), w[10] = (x, mask0, mask1
 * offsets), w[11] = (x, mask0, mask1 strides along the last dim).
 */
export function scaledMaskedSoftmaxKernel(dtype: DType, maskDTypes: readonly DType[], workgroupSize: number, perInvocation: boolean): string {
  const meta = SCALED_SOFTMAX_META;
  const s = storageType(dtype);
  const lanes = ['y', 'z'];
  const bindings = maskDTypes.map((m, k) => `@group(0) @binding(${3 + k}) var<storage, read> mask${k}: array<${storageType(m)}>;`);
  const applyMasks = maskDTypes.map((m, k) => {
    const at = `mask${k}[bases.${lanes[k]} + j * uniforms.w[${meta.lastStrides}].${lanes[k]}]`;
    return m === 'bool' ? `if (${at} != 0u) { z = negInf(); }` : `z += f32(${at});`;
  });
  const common = `${uniformsHeader(meta.rows, [dtype, ...maskDTypes])}
@group(0) @binding(1) var<storage, read_write> out: array<${s}>;
@group(0) @binding(2) var<storage, read> x: array<${s}>;
${bindings.join('\n')}
${rowBasesFunction(meta.shape, [meta.xStrides, ...meta.maskStrides.slice(0, maskDTypes.length)], meta.offsets)}

fn score(bases: vec3<u32>, query: u32, j: u32) -> f32 {
  var z = bitcast<f32>(uniforms.w[${meta.params}].x) * f32(x[bases.x + j * uniforms.w[${meta.lastStrides}].x]);
  ${applyMasks.join('\n  ')}
  if (uniforms.w[${meta.params}].y != 0u && j > query) { z = negInf(); }
  return z;
}
`;
  const prologue = `${entryPoint(workgroupSize, perInvocation)}
  let bases = rowBases(row);
  let query = row % uniforms.w[0].w;`;
  if (perInvocation) {
    return `${common}
${prologue}
${onlineSoftmaxLoop('score(bases, query, j)')}
  for (var j = 0u; j < width; j++) {
    out[row * width + j] = ${s}(exp(score(bases, query, j) - rowMax) / rowSum);
  }
}`;
  }
  return `${common}
${reduceSharedFunction(workgroupSize)}

${prologue}
  let l = lid.x;
  var m = negInf();
  for (var j = l; j < width; j += ${workgroupSize}u) { m = max(m, score(bases, query, j)); }
  partial[l] = m;
  let rowMax = reduceShared(l, true);
  var total = 0.0;
  for (var j = l; j < width; j += ${workgroupSize}u) { total += exp(score(bases, query, j) - rowMax); }
  partial[l] = total;
  let rowSum = reduceShared(l, false);
  for (var j = l; j < width; j += ${workgroupSize}u) {
    out[row * width + j] = ${s}(exp(score(bases, query, j) - rowMax) / rowSum);
  }
}`;
}

/** Writes the outer shape and per-operand strides of views that share a shape into uniform rows. */
function writeRowLayout(u: Uint32Array, shape: readonly number[], shapeRow: number, views: readonly View[], strideRows: readonly number[], offsetsRow: number, lastRow: number): void {
  const outer = shape.length - 1;
  shape.slice(0, outer).forEach((d, i) => (u[shapeRow * 4 + i] = d));
  views.forEach((v, k) => {
    v.strides.slice(0, outer).forEach((stride, i) => (u[strideRows[k] * 4 + i] = stride));
    u[offsetsRow * 4 + k] = v.offset;
    u[lastRow * 4 + k] = v.strides[outer];
  });
}

function checkOuterRank(op: string, shape: readonly number[]): void {
  if (shape.length - 1 > MAX_OUTER_RANK) {
    throw new Error(`${op}: tensors of rank ${shape.length} are not supported on WebGPU (at most ${MAX_OUTER_RANK + 1} dims); reshape to fewer dims`);
  }
}

export function scaledMaskedSoftmaxForward(runner: KernelRunner, x: View, options: ScaledMaskedSoftmaxOptions): Storage {
  const meta = SCALED_SOFTMAX_META;
  checkOuterRank('scaledMaskedSoftmax', x.shape);
  const rank = x.shape.length;
  const width = x.shape[rank - 1];
  const rows = numel(x.shape.slice(0, rank - 1));
  const dtype = x.storage.dtype;
  const out = runner.allocate(dtype, rows * width);
  if (rows * width === 0) return out;
  const maskDTypes = options.masks.map((m) => m.storage.dtype);
  const perInvocation = rows >= runner.workgroupSize;

  const u = new Uint32Array(meta.rows * 4);
  u.set([rows, width, rank - 1, rank >= 2 ? x.shape[rank - 2] : 1]);
  new Float32Array(u.buffer, meta.params * 16, 1)[0] = options.scale;
  u[meta.params * 4 + 1] = options.causal ? 1 : 0;
  writeRowLayout(u, x.shape, meta.shape, [x, ...options.masks], [meta.xStrides, ...meta.maskStrides], meta.offsets, meta.lastStrides);

  const key = `scaledMaskedSoftmax:${dtype}:${maskDTypes.join(',')}:${perInvocation}`;
  const source = () => scaledMaskedSoftmaxKernel(dtype, maskDTypes, runner.workgroupSize, perInvocation);
  const buffers = [out, x.storage, ...options.masks.map((m) => m.storage)].map(bufferOf);
  runner.run(key, source, u, buffers, perInvocation ? Math.ceil(rows / runner.workgroupSize) : rows);
  return out;
}

// ---- backward ----

/**
 * dx_j = scale * y_j * (g_j - sum_k g_k y_k) from a softmax output y, or dx_j = g_j - exp(y_j) * sum_k g_k
 * from a logSoftmax output (`log`). One invocation or one workgroup per row, as the forward kernel.
 * uniforms.w[0] = (rows, width, outer rank), w[1] = (scale bits), w[8] = (y, g offsets), w[9] = (y, g last strides).
 */
export function softmaxBackwardKernel(dtype: DType, gradDType: DType, log: boolean, workgroupSize: number, perInvocation: boolean): string {
  const meta = SOFTMAX_BACKWARD_META;
  const term = log ? 'gradAt(bases, j)' : 'gradAt(bases, j) * outAt(bases, j)';
  const dx = log
    ? 'gradAt(bases, j) - exp(outAt(bases, j)) * total'
    : 'scale * outAt(bases, j) * (gradAt(bases, j) - total)';
  const common = `${uniformsHeader(meta.rows, [dtype, gradDType])}
@group(0) @binding(1) var<storage, read_write> dx: array<${storageType(dtype)}>;
@group(0) @binding(2) var<storage, read> y: array<${storageType(dtype)}>;
@group(0) @binding(3) var<storage, read> grad: array<${storageType(gradDType)}>;
${rowBasesFunction(meta.shape, [meta.yStrides, meta.gStrides], meta.offsets)}

fn outAt(bases: vec3<u32>, j: u32) -> f32 {
  return f32(y[bases.x + j * uniforms.w[${meta.lastStrides}].x]);
}

fn gradAt(bases: vec3<u32>, j: u32) -> f32 {
  return f32(grad[bases.y + j * uniforms.w[${meta.lastStrides}].y]);
}
`;
  const prologue = `${entryPoint(workgroupSize, perInvocation)}
  let bases = rowBases(row);
  let scale = bitcast<f32>(uniforms.w[${meta.params}].x);`;
  const store = `dx[row * width + j] = ${storageType(dtype)}(${dx});`;
  if (perInvocation) {
    return `${common}
${prologue}
  var total = 0.0;
  for (var j = 0u; j < width; j++) { total += ${term}; }
  for (var j = 0u; j < width; j++) { ${store} }
}`;
  }
  return `${common}
${reduceSharedFunction(workgroupSize)}

${prologue}
  let l = lid.x;
  var sum = 0.0;
  for (var j = l; j < width; j += ${workgroupSize}u) { sum += ${term}; }
  partial[l] = sum;
  let total = reduceShared(l, false);
  for (var j = l; j < width; j += ${workgroupSize}u) { ${store} }
}`;
}

export function softmaxBackward(runner: KernelRunner, y: View, grad: View, scale: number, log: boolean): Storage {
  const meta = SOFTMAX_BACKWARD_META;
  checkOuterRank('softmax backward', y.shape);
  const rank = y.shape.length;
  const width = y.shape[rank - 1];
  const rows = numel(y.shape.slice(0, rank - 1));
  const dtype = y.storage.dtype;
  const gradDType = grad.storage.dtype;
  const out = runner.allocate(dtype, rows * width);
  if (rows * width === 0) return out;
  const perInvocation = rows >= runner.workgroupSize;

  const u = new Uint32Array(meta.rows * 4);
  u.set([rows, width, rank - 1]);
  new Float32Array(u.buffer, meta.params * 16, 1)[0] = scale;
  writeRowLayout(u, y.shape, meta.shape, [y, grad], [meta.yStrides, meta.gStrides], meta.offsets, meta.lastStrides);

  const key = `softmaxBackward:${dtype}:${gradDType}:${log}:${perInvocation}`;
  const source = () => softmaxBackwardKernel(dtype, gradDType, log, runner.workgroupSize, perInvocation);
  runner.run(key, source, u, [out, y.storage, grad.storage].map(bufferOf), perInvocation ? Math.ceil(rows / runner.workgroupSize) : rows);
  return out;
}

function bufferOf(storage: Storage): GPUBuffer {
  return (storage.data as { buffer: GPUBuffer }).buffer;
}
