// WGSL generators, one per kernel family. Shapes, strides and offsets travel in a uniform block
// (`uniforms.w`, an array of vec4<u32>), so one compiled pipeline serves every shape of its family.
// Large grids fold into a 2-D dispatch because each dimension stops at 65535 workgroups.

import type { DType } from '../../tensor/dtype.js';
import type { MapKernel, ReduceOp } from '../backend.js';
import {
  HELPERS, META_ACCESS, computeType, convert, nanFunction, onlineSoftmaxLoop, reduceSharedFunction, storageType, usesF16,
} from './wgsl.js';

export const MAX_RANK = 8;

function header(metaRows: number, dtypes: readonly DType[]): string {
  return `${usesF16(dtypes)}struct Uniforms { w: array<vec4<u32>, ${metaRows}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${META_ACCESS}
`;
}

/** Index of this invocation in a grid folded as (x, y) workgroups of `size` invocations each. */
function flatIndex(size: number): string {
  return `gid.x + gid.y * nwg.x * ${size}u`;
}

// ---- map: out[i] = f(a[i], b[i], c[i]) ----

/** Layout of the map kernel's uniform rows. */
export const MAP_META = { header: 0, params: 1, shape: 2, outStrides: 4, inStrides: 6, offsets: 12, scalars: 13, reciprocals: 14, rows: 16 };

/** Flat indices below this split into coordinates by f32 reciprocal division (exact up to 2^24, then corrected). */
export const FLOAT_DIVISION_LIMIT = 2 ** 24;

export interface MapSignature {
  kernel: MapKernel;
  compute: DType;
  out: DType;
  /** The dtype of each input, or 'scalar' for a plain number passed in the uniform block. */
  inputs: readonly (DType | 'scalar')[];
  contiguous: boolean;
  /** Dims of the (coalesced) output shape, for the strided form, whose index math is unrolled per rank. */
  rank: number;
  /** Whether every flat index is below FLOAT_DIVISION_LIMIT, so coordinates may use f32 division. */
  floatDivision: boolean;
  /**
   * Elements of the innermost dim that each invocation of the strided form writes (1, or a divisor of that
   * dim's size). The uniform block then holds the innermost size divided by `run` and a count of runs.
   */
  run: number;
}

/**
 * out[i] = kernel(a, b, c) for every element: one invocation per output element, or per run of `sig.run`
 * elements along the innermost dim in the strided form. The strided form splits the invocation index into
 * coordinates to find each operand; the contiguous form skips that. Integer division runs one lane at a time
 * on CPU adapters, so the strided form is unrolled for its rank and needs no division for the outermost dim.
 * It divides by a reciprocal in f32 where indices allow, and the elements of a run share one split.
 */
export function mapKernel(sig: MapSignature, workgroupSize: number): string {
  const c = computeType(sig.compute);
  const tensorDTypes = sig.inputs.filter((t): t is DType => t !== 'scalar');
  const lines: string[] = [header(MAP_META.rows, [sig.out, ...tensorDTypes])];
  for (const name of sig.kernel.helpers ?? []) lines.push(HELPERS[name]);
  lines.push(`@group(0) @binding(1) var<storage, read_write> out: array<${storageType(sig.out)}>;`);
  let binding = 2;
  sig.inputs.forEach((t, k) => {
    if (t !== 'scalar') lines.push(`@group(0) @binding(${binding++}) var<storage, read> in${k}: array<${storageType(t)}>;`);
  });
  const offsets = ['x', 'y', 'z', 'w'];
  const body: string[] = [];
  body.push(`let i = ${flatIndex(workgroupSize)};`, `if (i >= uniforms.w[0].x) { return; }`);
  if (sig.contiguous) {
    body.push(`let oOut = uniforms.w[${MAP_META.offsets}].x + i;`);
    sig.inputs.forEach((t, k) => {
      if (t !== 'scalar') body.push(`let o${k} = uniforms.w[${MAP_META.offsets}].${offsets[k + 1]} + i;`);
    });
  } else {
    const w = (row: number, d: number) => `uniforms.w[${row + (d >> 2)}][${d & 3}]`;
    body.push(`var rem = i;`, `var oOut = uniforms.w[${MAP_META.offsets}].x;`);
    sig.inputs.forEach((t, k) => {
      if (t !== 'scalar') body.push(`var o${k} = uniforms.w[${MAP_META.offsets}].${offsets[k + 1]};`);
    });
    for (let d = sig.rank - 1; d >= 0; d--) {
      if (d === 0) {
        body.push(`let c0 = rem;`);
      } else if (sig.floatDivision) {
        // f32(rem) is exact below 2^24, so the quotient is off by at most one; the remainder fixes it.
        body.push(
          `var q${d} = u32(f32(rem) * bitcast<f32>(${w(MAP_META.reciprocals, d)}));`,
          `if (q${d} * ${w(MAP_META.shape, d)} > rem) { q${d} -= 1u; } else if ((q${d} + 1u) * ${w(MAP_META.shape, d)} <= rem) { q${d} += 1u; }`,
          `let c${d} = rem - q${d} * ${w(MAP_META.shape, d)};`,
          `rem = q${d};`,
        );
      } else {
        body.push(`let q${d} = rem / ${w(MAP_META.shape, d)};`, `let c${d} = rem - q${d} * ${w(MAP_META.shape, d)};`, `rem = q${d};`);
      }
      // The innermost coordinate counts runs, so it steps `run` elements at a time.
      const coordinate = d === sig.rank - 1 && sig.run > 1 ? `c${d} * ${sig.run}u` : `c${d}`;
      body.push(`oOut += ${coordinate} * ${w(MAP_META.outStrides, d)};`);
      sig.inputs.forEach((t, k) => {
        if (t !== 'scalar') body.push(`o${k} += ${coordinate} * ${w(MAP_META.inStrides + 2 * k, d)};`);
      });
    }
  }
  const names = ['a', 'b', 'c'];
  for (let p = 0; p < 4; p++) body.push(`let p${p} = ${c}(bitcast<f32>(uniforms.w[${MAP_META.params}][${p}]));`);
  const resultType = sig.kernel.predicate ? 'bool' : c;
  const innerStride = (row: number) => `uniforms.w[${row + ((sig.rank - 1) >> 2)}][${(sig.rank - 1) & 3}]`;
  const run = sig.contiguous ? 1 : sig.run;
  for (let e = 0; e < run; e++) {
    const step = (row: number) => (e === 0 ? '' : ` + ${e}u * ${innerStride(row)}`);
    const element: string[] = [];
    sig.inputs.forEach((t, k) => {
      element.push(
        t === 'scalar'
          ? `let ${names[k]} = ${c}(bitcast<f32>(uniforms.w[${MAP_META.scalars}][${k}]));`
          : `let ${names[k]} = ${c}(in${k}[o${k}${step(MAP_META.inStrides + 2 * k)}]);`,
      );
    });
    element.push(`let r = ${sig.kernel.wgsl.replace(/\bT\(/g, `${c}(`)};`, `out[oOut${step(MAP_META.outStrides)}] = ${convert('r', resultType, sig.out)};`);
    body.push(run === 1 ? element.join('\n  ') : `{\n    ${element.join('\n    ')}\n  }`);
  }
  lines.push(`@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${body.join('\n  ')}
}`);
  return lines.join('\n');
}

/** Names a map expression may use to run on vec4 operands: component-wise builtins of one argument. */
const VEC4_SAFE = /^(?:[abc]|p[0-3]|exp|log|sqrt|inverseSqrt|abs|sign)$/;

/**
 * Returns whether a kernel's expression means the same on vec4<f32> operands as on f32 ones: arithmetic
 * on the inputs and parameters and one-argument component-wise builtins, no helpers and no predicates.
 * Scalars mix with vectors in WGSL arithmetic only, so anything else (max, select, T(...)) stays scalar.
 */
export function mapVec4Eligible(kernel: MapKernel): boolean {
  if (kernel.predicate || (kernel.helpers ?? []).length > 0) return false;
  if (!/^[\sa-zA-Z0-9_.+\-*/()]*$/.test(kernel.wgsl)) return false;
  const names = kernel.wgsl.match(/[a-zA-Z_][a-zA-Z0-9_]*/g) ?? [];
  return names.every((name) => VEC4_SAFE.test(name));
}

/**
 * Generates the contiguous float32 map kernel that takes four elements at a time:
 * out4[i] = kernel(a4[i], b4[i], c4[i]) for i < count / 4, one invocation per vec4. The backend uses it when the count and every offset are
 * multiples of 4 and mapVec4Eligible(kernel) holds. On lavapipe a 1M-element add took 2 ms this way
 * against 4 to 9 ms one element per invocation, because every load is a per-lane gather there.
 */
export function mapVec4Kernel(sig: MapSignature, workgroupSize: number): string {
  const lines: string[] = [header(MAP_META.rows, [])];
  lines.push('@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;');
  let binding = 2;
  sig.inputs.forEach((t, k) => {
    if (t !== 'scalar') lines.push(`@group(0) @binding(${binding++}) var<storage, read> in${k}: array<vec4<f32>>;`);
  });
  const offsets = ['x', 'y', 'z', 'w'];
  const names = ['a', 'b', 'c'];
  const body: string[] = [`let i = ${flatIndex(workgroupSize)};`, 'if (i >= uniforms.w[0].x / 4u) { return; }'];
  sig.inputs.forEach((t, k) => {
    body.push(
      t === 'scalar'
        ? `let ${names[k]} = bitcast<f32>(uniforms.w[${MAP_META.scalars}][${k}]);`
        : `let ${names[k]} = in${k}[uniforms.w[${MAP_META.offsets}].${offsets[k + 1]} / 4u + i];`,
    );
  });
  for (let p = 0; p < 4; p++) body.push(`let p${p} = bitcast<f32>(uniforms.w[${MAP_META.params}][${p}]);`);
  body.push(`out[uniforms.w[${MAP_META.offsets}].x / 4u + i] = vec4<f32>(${sig.kernel.wgsl});`);
  lines.push(`@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${body.join('\n  ')}
}`);
  return lines.join('\n');
}

// ---- reduce: out[o] = reduce over r of x[o, r] ----

export const REDUCE_META = { header: 0, shape: 1, strides: 3, offset: 5, rows: 6 };

/**
 * Reduces the trailing dims of a strided view. Each output row's base offset comes from its outer
 * coordinates. `perRow` picks one workgroup per output row (a shared-memory tree over the row, for long
 * rows); otherwise one invocation walks a whole row. uniforms.w[0] = (rows, reduceSize, rank, outerRank).
 */
export function reduceKernel(op: ReduceOp, input: DType, out: DType, perRow: boolean, workgroupSize: number): string {
  const c = computeType(input);
  const isArg = op === 'argmax' || op === 'argmin';
  const better = op === 'max' || op === 'argmax' ? '>' : '<';
  const init = op === 'sum' ? `${c}(0)` : c === 'f32' ? (better === '>' ? 'negInf()' : '-negInf()') : better === '>' ? 'i32(-2147483647 - 1)' : '2147483647';
  const combine = op === 'sum' ? 'acc = acc + v;' : `if (v ${better} acc || v != v) { acc = v; at = r; }`;
  const common = `${header(REDUCE_META.rows, [input, out])}
@group(0) @binding(1) var<storage, read_write> out: array<${storageType(out)}>;
@group(0) @binding(2) var<storage, read> x: array<${storageType(input)}>;

fn rowBase(row: u32) -> u32 {
  var rem = row;
  var offset = uniforms.w[${REDUCE_META.offset}].x;
  for (var d = i32(uniforms.w[0].w) - 1; d >= 0; d--) {
    let size = metaAt(${REDUCE_META.shape}u, u32(d));
    offset += (rem % size) * metaAt(${REDUCE_META.strides}u, u32(d));
    rem = rem / size;
  }
  return offset;
}

fn innerOffset(r: u32) -> u32 {
  var rem = r;
  var offset = 0u;
  for (var d = i32(uniforms.w[0].z) - 1; d >= i32(uniforms.w[0].w); d--) {
    let size = metaAt(${REDUCE_META.shape}u, u32(d));
    offset += (rem % size) * metaAt(${REDUCE_META.strides}u, u32(d));
    rem = rem / size;
  }
  return offset;
}
`;
  const store = isArg ? 'out[row] = i32(at);' : `out[row] = ${convert('acc', c, out)};`;
  if (!perRow) {
    return `${common}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${flatIndex(workgroupSize)};
  if (row >= uniforms.w[0].x) { return; }
  let base = rowBase(row);
  var acc = ${init};
  var at = 0u;
  for (var r = 0u; r < uniforms.w[0].y; r++) {
    let v = ${c}(x[base + innerOffset(r)]);
    ${combine}
  }
  ${store}
}`;
  }
  const merge = op === 'sum'
    ? 'accs[l] = accs[l] + accs[l + step];'
    : `let v = accs[l + step]; let r = ats[l + step];
      if (v ${better} accs[l] || (v == accs[l] && r < ats[l]) || (v != v && accs[l] == accs[l])) { accs[l] = v; ats[l] = r; }`;
  return `${common}
var<workgroup> accs: array<${c}, ${workgroupSize}>;
var<workgroup> ats: array<u32, ${workgroupSize}>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let l = lid.x;
  let base = rowBase(min(row, uniforms.w[0].x - 1u));
  var acc = ${init};
  var at = 0u;
  for (var r = l; r < uniforms.w[0].y; r += ${workgroupSize}u) {
    let v = ${c}(x[base + innerOffset(r)]);
    ${combine}
  }
  accs[l] = acc;
  ats[l] = at;
  workgroupBarrier();
  for (var step = ${workgroupSize / 2}u; step > 0u; step = step / 2u) {
    if (l < step) {
      ${merge}
    }
    workgroupBarrier();
  }
  if (l == 0u && row < uniforms.w[0].x) {
    acc = accs[0];
    at = ats[0];
    ${store}
  }
}`;
}

// ---- softmax: one invocation or one workgroup per row ----

export const SOFTMAX_META = { header: 0, shape: 1, strides: 3, offsets: 5, rows: 6 };

/**
 * softmax(x)_j = exp(x_j - max) / sum_k exp(x_k - max), or its log. With `perInvocation`, one invocation
 * walks a whole row with no barriers: an online max and sum in one pass, then the write pass. Otherwise
 * one workgroup takes a row, and shared-memory trees find the max and the sum. The backend picks one
 * invocation per row when the rows alone fill a workgroup, because barriers are costly on CPU adapters
 * (a [8192, 64] softmax took 110 µs per workgroup on lavapipe).
 * uniforms.w[0] = (rows, width, outerRank), w[5] = (offset, last stride).
 */
export function softmaxKernel(dtype: DType, log: boolean, workgroupSize: number, perInvocation: boolean): string {
  const s = storageType(dtype);
  const write = log ? `x_j - rowMax - log(rowSum)` : `exp(x_j - rowMax) / rowSum`;
  const common = `${header(SOFTMAX_META.rows, [dtype])}
@group(0) @binding(1) var<storage, read_write> out: array<${s}>;
@group(0) @binding(2) var<storage, read> x: array<${s}>;
${nanFunction('f32')}

fn rowBase(row: u32) -> u32 {
  var rem = row;
  var base = uniforms.w[${SOFTMAX_META.offsets}].x;
  for (var d = i32(uniforms.w[0].z) - 1; d >= 0; d--) {
    let size = metaAt(${SOFTMAX_META.shape}u, u32(d));
    base += (rem % size) * metaAt(${SOFTMAX_META.strides}u, u32(d));
    rem = rem / size;
  }
  return base;
}
`;
  if (perInvocation) {
    return `${common}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${flatIndex(workgroupSize)};
  if (row >= uniforms.w[0].x) { return; }
  let width = uniforms.w[0].y;
  let stride = uniforms.w[${SOFTMAX_META.offsets}].y;
  let base = rowBase(row);
${onlineSoftmaxLoop('f32(x[base + j * stride])')}
  for (var j = 0u; j < width; j++) {
    let x_j = f32(x[base + j * stride]);
    out[row * width + j] = ${s}(${write});
  }
}`;
  }
  return `${common}${reduceSharedFunction(workgroupSize)}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= uniforms.w[0].x) { return; }
  let width = uniforms.w[0].y;
  let stride = uniforms.w[${SOFTMAX_META.offsets}].y;
  let base = rowBase(row);
  let l = lid.x;
  var m = negInf();
  for (var j = l; j < width; j += ${workgroupSize}u) { m = max(m, f32(x[base + j * stride])); }
  partial[l] = m;
  let rowMax = reduceShared(l, true);
  var total = 0.0;
  for (var j = l; j < width; j += ${workgroupSize}u) { total += exp(f32(x[base + j * stride]) - rowMax); }
  partial[l] = total;
  let rowSum = reduceShared(l, false);
  for (var j = l; j < width; j += ${workgroupSize}u) {
    let x_j = f32(x[base + j * stride]);
    out[row * width + j] = ${s}(${write});
  }
}`;
}

// ---- gather and its deterministic reverse, scatterAdd ----

export const GATHER_META = { header: 0, shape: 1, xStrides: 3, indexStrides: 5, offsets: 7, rows: 8 };

/** out[p] = x[p with coordinate dim replaced by index[p]]: one invocation per output element. */
export function gatherKernel(dtype: DType, workgroupSize: number): string {
  const s = storageType(dtype);
  return `${header(GATHER_META.rows, [dtype])}
@group(0) @binding(1) var<storage, read_write> out: array<${s}>;
@group(0) @binding(2) var<storage, read> x: array<${s}>;
@group(0) @binding(3) var<storage, read> index: array<i32>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${flatIndex(workgroupSize)};
  if (i >= uniforms.w[0].x) { return; }
  let dim = uniforms.w[0].z;
  var rem = i;
  var xo = uniforms.w[${GATHER_META.offsets}].x;
  var io = uniforms.w[${GATHER_META.offsets}].y;
  var coordAtDim = 0u;
  for (var d = i32(uniforms.w[0].y) - 1; d >= 0; d--) {
    let size = metaAt(${GATHER_META.shape}u, u32(d));
    let coord = rem % size;
    rem = rem / size;
    io += coord * metaAt(${GATHER_META.indexStrides}u, u32(d));
    if (u32(d) != dim) { xo += coord * metaAt(${GATHER_META.xStrides}u, u32(d)); }
  }
  // Indices were checked against the size of x along dim by the caller; clamping keeps reads in bounds anyway.
  let k = u32(clamp(index[io], 0, i32(uniforms.w[0].w) - 1));
  out[i] = x[xo + k * metaAt(${GATHER_META.xStrides}u, dim)];
}`;
}

export const SCATTER_META = { header: 0, outShape: 1, indexShape: 3, srcStrides: 5, indexStrides: 7, offsets: 9, rows: 10 };

/**
 * out[q] = sum over k of src[p] where p equals q except p[dim] = k, for every k with index[p] = q[dim].
 * One invocation per output element loops over k in order, so the sum is deterministic with no atomics.
 */
export function scatterAddKernel(dtype: DType, workgroupSize: number): string {
  const s = storageType(dtype);
  return `${header(SCATTER_META.rows, [dtype])}
@group(0) @binding(1) var<storage, read_write> out: array<${s}>;
@group(0) @binding(2) var<storage, read> src: array<${s}>;
@group(0) @binding(3) var<storage, read> index: array<i32>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${flatIndex(workgroupSize)};
  if (i >= uniforms.w[0].x) { return; }
  let dim = uniforms.w[0].z;
  var rem = i;
  var so = uniforms.w[${SCATTER_META.offsets}].x;
  var io = uniforms.w[${SCATTER_META.offsets}].y;
  var dest = 0u;
  var inside = true;
  for (var d = i32(uniforms.w[0].y) - 1; d >= 0; d--) {
    let size = metaAt(${SCATTER_META.outShape}u, u32(d));
    let coord = rem % size;
    rem = rem / size;
    if (u32(d) == dim) {
      dest = coord;
    } else {
      inside = inside && coord < metaAt(${SCATTER_META.indexShape}u, u32(d));
      so += coord * metaAt(${SCATTER_META.srcStrides}u, u32(d));
      io += coord * metaAt(${SCATTER_META.indexStrides}u, u32(d));
    }
  }
  var acc = 0.0;
  if (inside) {
    let count = metaAt(${SCATTER_META.indexShape}u, dim);
    let srcStep = metaAt(${SCATTER_META.srcStrides}u, dim);
    let indexStep = metaAt(${SCATTER_META.indexStrides}u, dim);
    for (var k = 0u; k < count; k++) {
      if (index[io + k * indexStep] == i32(dest)) { acc += f32(src[so + k * srcStep]); }
    }
  }
  out[i] = ${s}(acc);
}`;
}
