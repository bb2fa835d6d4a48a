// LayerNorm on WebGPU: a fused forward kernel that writes y and the row statistics, a fused backward
// kernel that computes dx from the saved statistics and per-workgroup partial sums of dweight and dbias,
// and a reduction kernel that adds those partials in a fixed order (deterministic, no atomics).

import type { LayerNormGrads, LayerNormKernelOptions, LayerNormOutputs, Storage, View } from '../backend.js';
import type { DType } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import { storageType, usesF16 } from './wgsl.js';

/** The part of the WebGPU backend that these kernels use to allocate, compile and dispatch. */
export interface KernelRunner {
  readonly workgroupSize: number;
  readonly profile: AdapterProfile;
  readonly hasF16: boolean;
  readonly description: string;
  allocate(dtype: DType, count: number): Storage;
  free(storage: Storage): void;
  /** Compiles `source` once per `key` and records a dispatch of `groups` workgroups (folded to fit the per-dimension limit). */
  run(key: string, source: () => string, uniforms: Uint32Array, buffers: GPUBuffer[], groups: number): void;
}

/** Items (vec4s, or scalars for rows whose width is not a multiple of 4) that each GPU invocation aims to hold. */
const ITEMS_PER_LANE = 4;
/**
 * The maximum number of items an invocation keeps in registers. Wider rows stream from memory in two passes. Shader
 * compilers unroll the register loops, and on lavapipe 256 items already took seconds to compile.
 */
const MAX_CACHED_ITEMS = 8;
/**
 * Workgroup size on a CPU adapter, where each invocation takes a whole row: a multiple of common SIMD
 * widths (4, 8 or 16 lanes) that still leaves many workgroups to spread over the CPU's threads.
 */
const SOFTWARE_GROUP_SIZE = 32;

/** What the mapping depends on besides the row: the adapter's workgroup size and kind. */
export interface AdapterProfile {
  workgroupSize: number;
  /**
   * A CPU implementation such as lavapipe or SwiftShader: a workgroup runs as SIMD lanes on one thread and
   * a workgroup barrier switches between them, so one invocation per row is faster than a shared reduction.
   * Rows wider than MAX_CACHED_ITEMS are then read twice, but the second read of a row hits the CPU's cache.
   */
  software: boolean;
}

/** The mapping of a row to invocations, chosen from the row width and the adapter. */
export interface Mapping {
  /** Rows are read as vec4 (width and every offset a multiple of 4) or as scalars. */
  vec: boolean;
  /** Invocations per workgroup. */
  groupSize: number;
  /** Invocations per row, a power of two. They combine their partial results in workgroup memory. */
  threads: number;
  /** Rows per workgroup: groupSize / threads. */
  rowsPerGroup: number;
  /** Items each invocation keeps in registers, or 0 when the row is too wide and is read twice instead. */
  cached: number;
  /** Row width in items. */
  items: number;
}

export function chooseMapping(width: number, aligned: boolean, adapter: AdapterProfile, options: LayerNormKernelOptions = {}): Mapping {
  const vec = aligned && width % 4 === 0;
  const items = vec ? width / 4 : width;
  let groupSize = adapter.software ? Math.min(adapter.workgroupSize, SOFTWARE_GROUP_SIZE) : adapter.workgroupSize;
  let threads = adapter.software ? 1 : Math.min(groupSize, nextPowerOfTwo(Math.ceil(items / ITEMS_PER_LANE)));
  if (options.threadsPerRow !== undefined) {
    const t = options.threadsPerRow;
    if (!Number.isInteger(t) || t < 1 || t > adapter.workgroupSize || (t & (t - 1)) !== 0) {
      throw new RangeError(`layerNorm: threadsPerRow must be a power of two from 1 to the workgroup size ${adapter.workgroupSize}, got ${t}`);
    }
    // An explicit mapping is the GPU one, so that tests on a CPU adapter reach the shared-memory paths.
    threads = t;
    groupSize = adapter.workgroupSize;
  } else if (!adapter.software && Math.ceil(items / threads) > MAX_CACHED_ITEMS) {
    threads = groupSize;
  }
  const perLane = Math.ceil(items / threads);
  const cached = perLane <= MAX_CACHED_ITEMS ? perLane : 0;
  return { vec, groupSize, threads, rowsPerGroup: groupSize / threads, cached, items };
}

function nextPowerOfTwo(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

function bufferOf(storage: Storage): GPUBuffer {
  return (storage.data as { buffer: GPUBuffer }).buffer;
}

function checkF16(runner: KernelRunner, dtype: DType): void {
  if (dtype === 'float16' && !runner.hasF16) {
    throw new Error(`layerNorm: float16 needs the WebGPU feature 'shader-f16', which this adapter (${runner.description}) lacks; use float32 or the CPU backend`);
  }
  if (dtype !== 'float16' && dtype !== 'float32') {
    throw new Error(`layerNorm: dtype ${dtype} is not supported on WebGPU; use float32 or float16`);
  }
}

// ---- WGSL pieces shared by the kernels ----

interface Types {
  /** Storage element of x, y, grad, weight and bias. */
  store: string;
  /** Compute type of one item: vec4<f32> or f32. */
  item: string;
  /** Expression summing the lanes of an item `v`. */
  hsum: (v: string) => string;
  /** Elements per item. */
  elements: number;
}

function types(dtype: DType, vec: boolean): Types {
  const s = storageType(dtype);
  return vec
    ? { store: `vec4<${s}>`, item: 'vec4<f32>', hsum: (v) => `dot(${v}, vec4<f32>(1.0))`, elements: 4 }
    : { store: s, item: 'f32', hsum: (v) => v, elements: 1 };
}

/** Chan's merge of two (count, mean, M2) triples. A side with a zero count leaves the other unchanged. */
const MERGE = `
fn merge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let n = a.x + b.x;
  let delta = b.y - a.y;
  let fb = b.x / max(n, 1.0);
  return vec3<f32>(n, a.y + delta * fb, a.z + b.z + delta * delta * a.x * fb);
}`;

/** Emits a tree over the `threads` invocations of each row in workgroup array `shared`, combining with `combine(a, b)`. */
function treeReduce(threads: number, shared: string, combine: (a: string, b: string) => string): string {
  if (threads === 1) return '';
  return `
  workgroupBarrier();
  for (var step = ${threads / 2}u; step > 0u; step = step >> 1u) {
    if (lane < step) { ${shared}[l] = ${combine(`${shared}[l]`, `${shared}[l + step]`)}; }
    workgroupBarrier();
  }`;
}

// ---- forward ----

/**
 * Forward: per row, shift = x[0], d = x - shift, shiftedMean = mean(d), var = mean((d - shiftedMean)^2)
 * (biased), rstd = 1 / sqrt(var + eps), y = (d - shiftedMean) * rstd * weight + bias, in f32.
 * Work: `threads` invocations per row and `rowsPerGroup` rows per workgroup. Each invocation takes
 * items lane, lane + threads, ..., keeps them in registers when `cached` > 0, and computes its own
 * (count, mean, M2) by two passes over those registers. A tree in workgroup memory merges the triples
 * with Chan's formula, so x is read once. Rows too wide for registers stream instead: a per-item
 * Chan update, then a second read of x to write y.
 * uniforms.w[0] = (rows, width, items, bits of eps), w[1] = (x, weight, bias offsets in items).
 */
export function layerNormForwardKernel(dtype: DType, map: Mapping, hasWeight: boolean, hasBias: boolean): string {
  const t = types(dtype, map.vec);
  const workgroupSize = map.groupSize;
  const { threads, rowsPerGroup, cached } = map;
  let binding = 5;
  const optional: string[] = [];
  if (hasWeight) optional.push(`@group(0) @binding(${binding++}) var<storage, read> weight: array<${t.store}>;`);
  if (hasBias) optional.push(`@group(0) @binding(${binding++}) var<storage, read> bias: array<${t.store}>;`);
  const scale = hasWeight ? ` * ${t.item}(weight[uniforms.w[1].y + i])` : '';
  const shiftBy = hasBias ? ` + ${t.item}(bias[uniforms.w[1].z + i])` : '';
  const first = map.vec ? 'x[base].x' : 'x[base]';

  const stats = cached > 0
    ? `
  var cache: array<${t.item}, ${cached}>;
  var count = 0u;
  var total = ${t.item}(0.0);
  for (var k = 0u; k < ${cached}u; k++) {
    let i = lane + k * ${threads}u;
    if (i < items) {
      let d = ${t.item}(x[base + i]) - shift;
      cache[k] = d;
      total += d;
      count++;
    }
  }
  let n = f32(count * ${t.elements}u);
  let localMean = ${t.hsum('total')} / max(n, 1.0);
  var m2 = 0.0;
  for (var k = 0u; k < ${cached}u; k++) {
    if (lane + k * ${threads}u < items) {
      let c = cache[k] - localMean;
      m2 += ${t.hsum('c * c')};
    }
  }
  var own = vec3<f32>(n, localMean, m2);`
    : `
  var own = vec3<f32>(0.0);
  for (var i = lane; i < items; i += ${threads}u) {
    let d = ${t.item}(x[base + i]) - shift;
    let itemMean = ${t.hsum('d')} / ${t.elements}.0;
    let c = d - itemMean;
    own = merge(own, vec3<f32>(${t.elements}.0, itemMean, ${t.hsum('c * c')}));
  }`;

  const write = cached > 0
    ? `
    for (var k = 0u; k < ${cached}u; k++) {
      let i = lane + k * ${threads}u;
      if (i < items) { y[outBase + i] = ${t.store}((cache[k] - meanShifted) * rstd${scale}${shiftBy}); }
    }`
    : `
    // NOTE: this row did not fit in registers, so x is read a second time here.
    for (var i = lane; i < items; i += ${threads}u) {
      y[outBase + i] = ${t.store}((${t.item}(x[base + i]) - shift - meanShifted) * rstd${scale}${shiftBy});
    }`;

  const shared = threads > 1 ? `var<workgroup> partials: array<vec3<f32>, ${workgroupSize}>;` : '';
  const combined = threads > 1 ? `
  partials[l] = own;${treeReduce(threads, 'partials', (a, b) => `merge(${a}, ${b})`)}
  let rowStats = partials[slot * ${threads}u];` : `
  let rowStats = own;`;

  return `${usesF16([dtype])}struct Uniforms { w: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
@group(0) @binding(1) var<storage, read_write> y: array<${t.store}>;
@group(0) @binding(2) var<storage, read_write> shiftedMeanOut: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstdOut: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<${t.store}>;
${optional.join('\n')}
${shared}
${MERGE}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let rows = uniforms.w[0].x;
  let group = wid.x + wid.y * nwg.x;
  if (group * ${rowsPerGroup}u >= rows) { return; }
  let l = lid.x;
  let slot = l / ${threads}u;
  let lane = l % ${threads}u;
  let row = group * ${rowsPerGroup}u + slot;
  let items = uniforms.w[0].z;
  let base = uniforms.w[1].x + min(row, rows - 1u) * items;
  let shift = f32(${first});
  ${stats}
  ${combined}
  let meanShifted = rowStats.y;
  let rstd = inverseSqrt(rowStats.z / f32(uniforms.w[0].y) + bitcast<f32>(uniforms.w[0].w));
  if (row < rows) {
    let outBase = row * items;${write}
    if (lane == 0u) {
      shiftedMeanOut[row] = meanShifted;
      rstdOut[row] = rstd;
    }
  }
}`;
}

export function layerNormForward(
  runner: KernelRunner, x: View, width: number, weight: View | null, bias: View | null, eps: number, options: LayerNormKernelOptions = {},
): LayerNormOutputs {
  const dtype = x.storage.dtype;
  checkF16(runner, dtype);
  const count = numel(x.shape);
  const rows = count / width;
  const out = runner.allocate(dtype, count);
  const shiftedMean = runner.allocate('float32', rows);
  const rstd = runner.allocate('float32', rows);
  if (rows === 0) return { out, shiftedMean, rstd };
  const aligned = [x, weight, bias].every((v) => !v || v.offset % 4 === 0);
  const map = chooseMapping(width, aligned, runner.profile, options);
  const per = map.vec ? 4 : 1;
  const key = `layerNorm:${dtype}:${map.vec}:${map.groupSize}:${map.threads}:${map.cached}:${weight !== null}:${bias !== null}`;
  const u = new Uint32Array(8);
  const f = new Float32Array(u.buffer);
  u.set([rows, width, map.items]);
  f[3] = eps;
  u.set([x.offset / per, (weight?.offset ?? 0) / per, (bias?.offset ?? 0) / per], 4);
  const buffers = [out, shiftedMean, rstd].map(bufferOf);
  for (const v of [x, weight, bias]) if (v) buffers.push(bufferOf(v.storage));
  const source = () => layerNormForwardKernel(dtype, map, weight !== null, bias !== null);
  runner.run(key, source, u, buffers, Math.ceil(rows / map.rowsPerGroup));
  return { out, shiftedMean, rstd };
}

// ---- backward ----

/**
 * Backward: per row, xhat = (x - x[0] - shiftedMean) * rstd from the saved statistics, gw = grad * weight and
 * dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)). Work: the forward mapping, and each workgroup
 * walks row blocks group, group + groups, ... in order. Each invocation keeps its columns' running sums
 * of grad * xhat (dweight) and grad (dbias) across those rows and finally writes them as one row of
 * `partials` per (workgroup, row slot): [dweight partials | dbias partials]. Rows too wide for registers
 * keep those sums in `partials` itself (each invocation owns its entries) and read x and grad twice.
 * uniforms.w[0] = (rows, width, items, groups), w[1] = (x, grad, weight offsets in items), w[2] = (shiftedMean, rstd offsets, dbias start).
 */
export function layerNormBackwardKernel(dtype: DType, map: Mapping, hasWeight: boolean, wantBias: boolean): string {
  const workgroupSize = map.groupSize;
  const t = types(dtype, map.vec);
  const { threads, rowsPerGroup, cached } = map;
  const withPartials = hasWeight || wantBias;
  const lines: string[] = [];
  let binding = 1;
  lines.push(`@group(0) @binding(${binding++}) var<storage, read_write> dx: array<${t.store}>;`);
  if (withPartials) lines.push(`@group(0) @binding(${binding++}) var<storage, read_write> partials: array<${t.item}>;`);
  lines.push(`@group(0) @binding(${binding++}) var<storage, read> grad: array<${t.store}>;`);
  lines.push(`@group(0) @binding(${binding++}) var<storage, read> x: array<${t.store}>;`);
  if (hasWeight) lines.push(`@group(0) @binding(${binding++}) var<storage, read> weight: array<${t.store}>;`);
  lines.push(`@group(0) @binding(${binding++}) var<storage, read> shiftedMeanIn: array<f32>;`);
  lines.push(`@group(0) @binding(${binding++}) var<storage, read> rstdIn: array<f32>;`);
  const times = hasWeight ? ` * ${t.item}(weight[uniforms.w[1].z + i])` : '';
  const first = map.vec ? 'x[xBase].x' : 'x[xBase]';

  // One item's contribution: xh, gv and gw for column item i of the current row.
  const load = `
      let xh = (${t.item}(x[xBase + i]) - shift - mu) * rs;
      let gv = ${t.item}(grad[gBase + i]);
      let gw = gv${times};`;

  let body: string;
  if (cached > 0) {
    const accumulators = [hasWeight ? `var dwAcc: array<${t.item}, ${cached}>;` : '', wantBias ? `var dbAcc: array<${t.item}, ${cached}>;` : ''].join('\n  ');
    const accumulate = [hasWeight ? 'dwAcc[k] += gv * xh;' : '', wantBias ? 'dbAcc[k] += gv;' : ''].join(' ');
    const flush = [
      hasWeight ? 'partials[partialBase + i] = dwAcc[k];' : '',
      wantBias ? 'partials[uniforms.w[2].z + partialBase + i] = dbAcc[k];' : '',
    ].join(' ');
    body = `
  ${accumulators}
  var xhatC: array<${t.item}, ${cached}>;
  var gwC: array<${t.item}, ${cached}>;
  for (var block = group; block * ${rowsPerGroup}u < rows; block += groups) {
    let row = block * ${rowsPerGroup}u + slot;
    let valid = row < rows;
    let r = min(row, rows - 1u);
    let mu = shiftedMeanIn[uniforms.w[2].x + r];
    let rs = rstdIn[uniforms.w[2].y + r];
    let xBase = uniforms.w[1].x + r * items;
    let shift = f32(${first});
    let gBase = uniforms.w[1].y + r * items;
    var sums = vec2<f32>(0.0);
    for (var k = 0u; k < ${cached}u; k++) {
      let i = lane + k * ${threads}u;
      if (i < items) {${load}
        xhatC[k] = xh;
        gwC[k] = gw;
        sums += vec2<f32>(${t.hsum('gw')}, ${t.hsum('gw * xh')});
        if (valid) { ${accumulate} }
      }
    }
    ${rowSums(threads)}
    if (valid) {
      for (var k = 0u; k < ${cached}u; k++) {
        let i = lane + k * ${threads}u;
        if (i < items) { dx[row * items + i] = ${t.store}(rs * (gwC[k] - c1 - xhatC[k] * c2)); }
      }
    }
  }
  ${withPartials ? `let partialBase = (group * ${rowsPerGroup}u + slot) * items;
  for (var k = 0u; k < ${cached}u; k++) {
    let i = lane + k * ${threads}u;
    if (i < items) { ${flush} }
  }` : ''}`;
  } else {
    // The first row block of a workgroup initializes its partials (zero for a row slot past the end).
    const accumulate = [
      hasWeight ? `partials[partialBase + i] = select(partials[partialBase + i], ${t.item}(0.0), first) + select(${t.item}(0.0), gv * xh, valid);` : '',
      wantBias ? `partials[uniforms.w[2].z + partialBase + i] = select(partials[uniforms.w[2].z + partialBase + i], ${t.item}(0.0), first) + select(${t.item}(0.0), gv, valid);` : '',
    ].join('\n        ');
    body = `
  let partialBase = (group * ${rowsPerGroup}u + slot) * items;
  for (var block = group; block * ${rowsPerGroup}u < rows; block += groups) {
    let first = block == group;
    let row = block * ${rowsPerGroup}u + slot;
    let valid = row < rows;
    let r = min(row, rows - 1u);
    let mu = shiftedMeanIn[uniforms.w[2].x + r];
    let rs = rstdIn[uniforms.w[2].y + r];
    let xBase = uniforms.w[1].x + r * items;
    let shift = f32(${first});
    let gBase = uniforms.w[1].y + r * items;
    var sums = vec2<f32>(0.0);
    for (var i = lane; i < items; i += ${threads}u) {${load}
      sums += vec2<f32>(${t.hsum('gw')}, ${t.hsum('gw * xh')});
      ${withPartials ? accumulate : ''}
    }
    ${rowSums(threads)}
    // NOTE: this row did not fit in registers, so x and grad are read a second time here.
    if (valid) {
      for (var i = lane; i < items; i += ${threads}u) {${load}
        dx[row * items + i] = ${t.store}(rs * (gw - c1 - xh * c2));
      }
    }
  }`;
  }

  return `${usesF16([dtype])}struct Uniforms { w: array<vec4<u32>, 3> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${lines.join('\n')}
${threads > 1 ? `var<workgroup> sumsShared: array<vec2<f32>, ${workgroupSize}>;` : ''}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let rows = uniforms.w[0].x;
  let items = uniforms.w[0].z;
  let groups = uniforms.w[0].w;
  let group = wid.x + wid.y * nwg.x;
  if (group >= groups) { return; }
  let l = lid.x;
  let slot = l / ${threads}u;
  let lane = l % ${threads}u;
  let inverseWidth = 1.0 / f32(uniforms.w[0].y);
  ${body}
}`;
}

/** Sums (sum(gw), sum(gw * xhat)) over the invocations of a row into c1 and c2, the two row means. */
function rowSums(threads: number): string {
  if (threads === 1) return 'let c1 = sums.x * inverseWidth;\n    let c2 = sums.y * inverseWidth;';
  return `sumsShared[l] = sums;${treeReduce(threads, 'sumsShared', (a, b) => `${a} + ${b}`).replace(/\n/g, '\n  ')}
    let total = sumsShared[slot * ${threads}u];
    // The next row block overwrites sumsShared, so every invocation must have read it first.
    workgroupBarrier();
    let c1 = total.x * inverseWidth;
    let c2 = total.y * inverseWidth;`;
}

/**
 * out[i] = sum over p of partials[start + p * items + i], for p = 0, 1, ..., count - 1 in order:
 * one invocation per column item. uniforms.w[0] = (items, count, start).
 */
export function partialSumKernel(dtype: DType, vec: boolean, workgroupSize: number): string {
  const t = types(dtype, vec);
  return `${usesF16([dtype])}struct Uniforms { w: array<vec4<u32>, 1> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
@group(0) @binding(1) var<storage, read_write> out: array<${t.store}>;
@group(0) @binding(2) var<storage, read> partials: array<${t.item}>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${workgroupSize}u;
  let items = uniforms.w[0].x;
  if (i >= items) { return; }
  var acc = ${t.item}(0.0);
  for (var p = 0u; p < uniforms.w[0].y; p++) {
    acc += partials[uniforms.w[0].z + p * items + i];
  }
  out[i] = ${t.store}(acc);
}`;
}

/**
 * Workgroups for the backward pass: about sqrt(row blocks), so that each workgroup sums about as many
 * rows as there are workgroups. The partials then cost about 1 / sqrt(row blocks) of grad's traffic
 * while the parallelism still grows with the input.
 */
function backwardGroups(rows: number, map: Mapping): number {
  // NOTE: only timed on lavapipe. On a large GPU, sqrt(blocks) (32 workgroups for 4096 rows of 1024) may leave
  // compute units idle, and a floor from the adapter would need measuring there.
  const blocks = Math.ceil(rows / map.rowsPerGroup);
  return Math.max(1, Math.min(blocks, Math.ceil(Math.sqrt(blocks))));
}

export function layerNormBackward(
  runner: KernelRunner, grad: View, x: View, width: number, weight: View | null, shiftedMean: View, rstd: View, withBias: boolean,
  options: LayerNormKernelOptions = {},
): LayerNormGrads {
  const dtype = x.storage.dtype;
  checkF16(runner, dtype);
  const rows = numel(x.shape) / width;
  const dx = runner.allocate(dtype, rows * width);
  const wantWeight = weight !== null;
  const dweight = wantWeight ? runner.allocate(dtype, width) : null;
  const dbias = withBias ? runner.allocate(dtype, width) : null;
  const aligned = [grad, x, weight].every((v) => !v || v.offset % 4 === 0);
  const map = chooseMapping(width, aligned, runner.profile, options);
  const per = map.vec ? 4 : 1;
  // With no rows only the sums run, over zero partial rows, so that dweight and dbias come out zero.
  const groups = rows === 0 ? 0 : backwardGroups(rows, map);
  const partialRows = groups * map.rowsPerGroup;
  const partialItems = partialRows * map.items;
  const partials = wantWeight || withBias ? runner.allocate('float32', Math.max(1, partialItems * 2 * per)) : null;

  if (rows > 0) {
    const key = `layerNormBackward:${dtype}:${map.vec}:${map.groupSize}:${map.threads}:${map.cached}:${wantWeight}:${withBias}`;
    const u = new Uint32Array(12);
    u.set([rows, width, map.items, groups]);
    u.set([x.offset / per, grad.offset / per, (weight?.offset ?? 0) / per], 4);
    u.set([shiftedMean.offset, rstd.offset, partialItems], 8);
    const buffers = [bufferOf(dx)];
    if (partials) buffers.push(bufferOf(partials));
    buffers.push(bufferOf(grad.storage), bufferOf(x.storage));
    if (weight) buffers.push(bufferOf(weight.storage));
    buffers.push(bufferOf(shiftedMean.storage), bufferOf(rstd.storage));
    const source = () => layerNormBackwardKernel(dtype, map, wantWeight, withBias);
    runner.run(key, source, u, buffers, groups);
  }

  if (partials) {
    const sumKey = `layerNormPartialSum:${dtype}:${map.vec}`;
    const sumSource = () => partialSumKernel(dtype, map.vec, runner.workgroupSize);
    const sumGroups = Math.ceil(map.items / runner.workgroupSize);
    for (const [target, start] of [[dweight, 0], [dbias, partialItems]] as const) {
      if (!target) continue;
      const su = new Uint32Array([map.items, partialRows, start, 0]);
      runner.run(sumKey, sumSource, su, [bufferOf(target), bufferOf(partials)], sumGroups);
    }
    runner.free(partials);
  }
  return { dx, dweight, dbias };
}
