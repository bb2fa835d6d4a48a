// Cross entropy on WebGPU: a forward kernel that reads each row of logits once and writes the row's loss
// and logsumexp, and a backward kernel that writes dx from the saved logsumexp. Rows are walked as by the
// softmax kernel: one invocation per row when the rows alone fill a workgroup, else one workgroup per row.

import type { CrossEntropyOutputs, Storage, View } from '../backend.js';
import type { DType } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import { coalesceDims } from './coalesce.js';
import type { KernelRunner } from './layernorm.js';
import { META_ACCESS, storageType, usesF16 } from './wgsl.js';

/**
 * Layout of the uniform rows, in vec4<u32>: w[0] = (rows, classes, outer rank, ignoreIndex as i32 bits),
 * w[1..2] = outer shape, w[3..4] = outer strides of the logits (8 entries each), w[5] = (logits offset,
 * class stride, target offset, target stride), w[6] = (labelSmoothing as f32 bits, lse offset, grad offset, grad stride).
 */
const META = { header: 0, shape: 1, strides: 3, offsets: 5, extra: 6, rows: 7 };
/** Outer dims (all but the class dim) the uniforms hold after coalescing. */
const MAX_OUTER_RANK = 8;

/** Returns true to give each invocation a whole row, false to give each row a workgroup (few long rows). */
function usesRowPerInvocation(rows: number, runner: KernelRunner): boolean {
  return rows >= runner.workgroupSize;
}

function bufferOf(storage: Storage): GPUBuffer {
  return (storage.data as { buffer: GPUBuffer }).buffer;
}

/** Emits the WGSL that both kernels share: bindings, row addressing and the target lookup. */
function commonSource(dtype: DType, bindings: string): string {
  return `${usesF16([dtype])}struct Uniforms { w: array<vec4<u32>, ${META.rows}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${bindings}
${META_ACCESS}

/** Storage offset of element 0 of a row, from the outer shape and strides of the logits. */
fn rowBase(row: u32) -> u32 {
  var rem = row;
  var base = uniforms.w[${META.offsets}].x;
  for (var d = i32(uniforms.w[0].z) - 1; d >= 0; d--) {
    let size = metaAt(${META.shape}u, u32(d));
    base += (rem % size) * metaAt(${META.strides}u, u32(d));
    rem = rem / size;
  }
  return base;
}

fn isIgnored(t: i32) -> bool {
  return t == bitcast<i32>(uniforms.w[0].w);
}

/** Clamps a target to [0, classes), because out-of-range targets are only checked on the CPU backend. */
fn targetClass(t: i32) -> u32 {
  return u32(clamp(t, 0, i32(uniforms.w[0].y) - 1));
}

fn targetOf(row: u32) -> i32 {
  return targets[uniforms.w[${META.offsets}].z + row * uniforms.w[${META.offsets}].w];
}
`;
}

/** Emits the entry point's first lines: row, and the first column and column step of this invocation. */
function entryPoint(workgroupSize: number, rowPerInvocation: boolean): string {
  if (rowPerInvocation) {
    return `@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * ${workgroupSize}u;
  let first = 0u;
  let step = 1u;`;
  }
  return `@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let first = lid.x;
  let step = ${workgroupSize}u;`;
}

/**
 * Forward: per row, lse = log(sum_j exp(x_j)) by an online max and sum (when the max grows, the sum so far is
 * rescaled by exp(old max - new max)), and loss = (1 - s) * (lse - x_t) + s * (lse - mean_j x_j), or 0 where
 * t == ignoreIndex. Math is f32 whatever the storage type. With `rowPerInvocation` one invocation walks a
 * row with no barriers. Otherwise the workgroup's invocations take columns l, l + size, ... and a tree in
 * workgroup memory merges their (max, sum, sum of x) triples. A NaN makes the row's lse NaN, as in torch.
 */
export function crossEntropyForwardKernel(dtype: DType, workgroupSize: number, rowPerInvocation: boolean): string {
  const element = storageType(dtype);
  const bindings = `@group(0) @binding(1) var<storage, read_write> loss: array<${element}>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<${element}>;
@group(0) @binding(4) var<storage, read> targets: array<i32>;
${rowPerInvocation ? '' : `var<workgroup> partials: array<vec3<f32>, ${workgroupSize}>;`}`;

  const combine = rowPerInvocation ? `
  let stats = own;` : `
  partials[first] = own;
  workgroupBarrier();
  for (var half = ${workgroupSize / 2}u; half > 0u; half = half >> 1u) {
    if (first < half) { partials[first] = merge(partials[first], partials[first + half]); }
    workgroupBarrier();
  }
  if (first != 0u) { return; }
  let stats = partials[0];`;

  return `${commonSource(dtype, bindings)}
/** Adds one logit v to a row's (max, sum of exp(x - max), sum of x). */
fn accumulate(a: vec3<f32>, v: f32) -> vec3<f32> {
  if (v != v) { return vec3<f32>(a.x, v, a.z + v); }
  if (v > a.x) { return vec3<f32>(v, a.y * exp(a.x - v) + 1.0, a.z + v); }
  if (v > negInf()) { return vec3<f32>(a.x, a.y + exp(v - a.x), a.z + v); }
  return vec3<f32>(a.x, a.y, a.z + v);
}

/** Merges two (max, sum of exp(x - max), sum of x) triples. A side that saw only -inf adds nothing. */
fn merge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let m = max(a.x, b.x);
  if (m == negInf()) { return vec3<f32>(m, a.y + b.y, a.z + b.z); }
  return vec3<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m), a.z + b.z);
}

${entryPoint(workgroupSize, rowPerInvocation)}
  if (row >= uniforms.w[0].x) { return; }
  let classes = uniforms.w[0].y;
  let stride = uniforms.w[${META.offsets}].y;
  let base = rowBase(row);
  var own = vec3<f32>(negInf(), 0.0, 0.0);
  for (var j = first; j < classes; j += step) {
    own = accumulate(own, f32(x[base + j * stride]));
  }
  ${combine}
  let rowLse = stats.x + log(stats.y);
  lse[row] = rowLse;
  let t = targetOf(row);
  if (isIgnored(t)) {
    loss[row] = ${element}(0.0);
    return;
  }
  let smoothing = bitcast<f32>(uniforms.w[${META.extra}].x);
  let xt = f32(x[base + targetClass(t) * stride]);
  var value = (1.0 - smoothing) * (rowLse - xt);
  if (smoothing > 0.0) { value += smoothing * (rowLse - stats.z / f32(classes)); }
  loss[row] = ${element}(value);
}`;
}

/**
 * Backward: dx_j = g * (exp(x_j - lse) - (1 - s) * [j == t] - s / C) on rows with t != ignoreIndex, and 0 on
 * the others, with g the row's output gradient. dx is written contiguous in row order. Work: the forward's
 * mapping, one invocation per row or one workgroup per row, with no barriers because nothing is reduced.
 */
export function crossEntropyBackwardKernel(dtype: DType, workgroupSize: number, rowPerInvocation: boolean): string {
  const element = storageType(dtype);
  const bindings = `@group(0) @binding(1) var<storage, read_write> dx: array<${element}>;
@group(0) @binding(2) var<storage, read> x: array<${element}>;
@group(0) @binding(3) var<storage, read> targets: array<i32>;
@group(0) @binding(4) var<storage, read> lse: array<f32>;
@group(0) @binding(5) var<storage, read> grad: array<${element}>;`;

  return `${commonSource(dtype, bindings)}
${entryPoint(workgroupSize, rowPerInvocation)}
  if (row >= uniforms.w[0].x) { return; }
  let classes = uniforms.w[0].y;
  let outBase = row * classes;
  let t = targetOf(row);
  if (isIgnored(t)) {
    for (var j = first; j < classes; j += step) { dx[outBase + j] = ${element}(0.0); }
    return;
  }
  let stride = uniforms.w[${META.offsets}].y;
  let base = rowBase(row);
  let extra = uniforms.w[${META.extra}];
  let smoothing = bitcast<f32>(extra.x);
  let rowLse = lse[extra.y + row];
  let g = f32(grad[extra.z + row * extra.w]);
  let c = targetClass(t);
  let onTarget = 1.0 - smoothing;
  let uniformPart = smoothing / f32(classes);
  for (var j = first; j < classes; j += step) {
    let p = exp(f32(x[base + j * stride]) - rowLse);
    dx[outBase + j] = ${element}(g * (p - select(0.0, onTarget, j == c) - uniformPart));
  }
}`;
}

/** Fills the uniforms both kernels share and returns them with the row and class counts. */
function uniformsFor(logits: View, target: View, ignoreIndex: number, smoothing: number): { u: Uint32Array; rows: number; classes: number } {
  const rank = logits.shape.length;
  const classes = logits.shape[rank - 1];
  const rows = numel(logits.shape.slice(0, rank - 1));
  // Merged outer dims leave fewer divisions in rowBase; a [N, d, C] view of [N, C, d] logits keeps two.
  const outer = coalesceDims(logits.shape.slice(0, rank - 1), [logits.strides.slice(0, rank - 1)]);
  if (outer.shape.length > MAX_OUTER_RANK) {
    throw new Error(`crossEntropy: logits with ${outer.shape.length} strided outer dims are not supported on WebGPU (at most ${MAX_OUTER_RANK}); make the input contiguous first`);
  }
  const u = new Uint32Array(META.rows * 4);
  const f = new Float32Array(u.buffer);
  const i = new Int32Array(u.buffer);
  u.set([rows, classes, outer.shape.length]);
  i[3] = ignoreIndex;
  outer.shape.forEach((d, k) => (u[META.shape * 4 + k] = d));
  outer.strides[0].forEach((st, k) => (u[META.strides * 4 + k] = st));
  u.set([logits.offset, logits.strides[rank - 1], target.offset, target.strides[0]], META.offsets * 4);
  f[META.extra * 4] = smoothing;
  return { u, rows, classes };
}

function checkDType(runner: KernelRunner, dtype: DType): void {
  if (dtype === 'float16' && !runner.hasF16) {
    throw new Error(`crossEntropy: float16 needs the WebGPU feature 'shader-f16', which this adapter (${runner.description}) lacks; use float32 or the CPU backend`);
  }
  if (dtype !== 'float16' && dtype !== 'float32') {
    throw new Error(`crossEntropy: dtype ${dtype} is not supported on WebGPU; use float32 or float16`);
  }
}

export function crossEntropyForward(runner: KernelRunner, logits: View, target: View, ignoreIndex: number, smoothing: number): CrossEntropyOutputs {
  const dtype = logits.storage.dtype;
  checkDType(runner, dtype);
  const { u, rows } = uniformsFor(logits, target, ignoreIndex, smoothing);
  const loss = runner.allocate(dtype, rows);
  const lse = runner.allocate('float32', rows);
  if (rows === 0) return { loss, lse };
  const byInvocation = usesRowPerInvocation(rows, runner);
  const key = `crossEntropy:${dtype}:${runner.workgroupSize}:${byInvocation}`;
  const source = () => crossEntropyForwardKernel(dtype, runner.workgroupSize, byInvocation);
  const buffers = [bufferOf(loss), bufferOf(lse), bufferOf(logits.storage), bufferOf(target.storage)];
  runner.run(key, source, u, buffers, byInvocation ? Math.ceil(rows / runner.workgroupSize) : rows);
  return { loss, lse };
}

export function crossEntropyBackward(
  runner: KernelRunner, grad: View, logits: View, target: View, lse: View, ignoreIndex: number, smoothing: number,
): Storage {
  const dtype = logits.storage.dtype;
  checkDType(runner, dtype);
  const { u, rows, classes } = uniformsFor(logits, target, ignoreIndex, smoothing);
  const dx = runner.allocate(dtype, rows * classes);
  if (rows * classes === 0) return dx;
  u.set([lse.offset, grad.offset, grad.strides[0]], META.extra * 4 + 1);
  const byInvocation = usesRowPerInvocation(rows, runner);
  const key = `crossEntropyBackward:${dtype}:${runner.workgroupSize}:${byInvocation}`;
  const source = () => crossEntropyBackwardKernel(dtype, runner.workgroupSize, byInvocation);
  const buffers = [bufferOf(dx), bufferOf(logits.storage), bufferOf(target.storage), bufferOf(lse.storage), bufferOf(grad.storage)];
  runner.run(key, source, u, buffers, byInvocation ? Math.ceil(rows / runner.workgroupSize) : rows);
  return dx;
}
