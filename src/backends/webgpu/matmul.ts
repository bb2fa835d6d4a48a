// The matmul kernel family: out[b, i, j] = sum_k A[b, i, k] * B[b, k, j], read through strides so that
// transposed operands and broadcast batch dims cost no copy.

import type { MatmulActivation } from '../backend.js';
import type { DType } from '../../tensor/dtype.js';
import { META_ACCESS, storageType, usesF16 } from './wgsl.js';

/** Layout of the uniform rows: see the comment on matmulKernel. */
export const MATMUL_META = { sizes: 0, strides: 1, offsets: 2, batchShape: 3, aBatch: 5, bBatch: 7, bias: 9, rows: 10 };

/**
 * The epilogue of a matmul kernel: a bias added along n, then an activation whose input is also stored,
 * because backward needs it. Each fused step saves one dispatch and one pass over the output.
 */
export interface MatmulEpilogueKind {
  bias: boolean;
  activation: MatmulActivation | null;
}

/**
 * The activations as WGSL expressions of v, a vec4 of four columns, with the formulas of the elementwise gelu
 * kernels (erf by Abramowitz and Stegun 7.1.26; tanh clamped to [-10, 10] so that exp cannot overflow).
 */
const ACTIVATION: Record<MatmulActivation, { expr: string; helper: string }> = {
  gelu: { expr: 'v * 0.5 * (1.0 + erf4(v * 0.70710678118654752))', helper: `
fn erf4(x: vec4<f32>) -> vec4<f32> {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= vec4<f32>(0.0));
}` },
  geluTanh: { expr: '0.5 * v * (1.0 + tanh4(0.7978845608028654 * (v + 0.044715 * v * v * v)))', helper: `
fn tanh4(x: vec4<f32>) -> vec4<f32> {
  let e = exp(2.0 * clamp(x, vec4<f32>(-10.0), vec4<f32>(10.0)));
  return (e - 1.0) / (e + 1.0);
}` },
};

/**
 * How a kernel reads B: 'n4' loads four neighbouring columns as one vec4 (B's column stride is 1), and
 * 'strided' loads scalars through both strides. NOTE: a vec4 load along k for x @ W^T (B's row stride
 * is 1) measured 2x slower than 'strided' on lavapipe, so that layout takes the strided path.
 */
export type MatmulLoad = 'n4' | 'strided';

export interface MatmulTiling {
  /** Invocations per workgroup, each computing `rows` x 4 * `groups` outputs. */
  lanes: number;
  /** Rows of A that one workgroup covers; every invocation of the workgroup shares them. */
  rows: number;
  /** Groups of four neighbouring columns per invocation. */
  groups: number;
}

/**
 * Chooses the workgroup shape for an m x n output. Each step of k loads one element of A per row and one
 * vec4 of B per group, so wider blocks spend fewer loads per multiply-add. On lavapipe, 16 rows x 16
 * columns (4 groups) per invocation measured 1.5-2x faster than 16 x 4 at 256 to 1024 squared, although
 * its 256 accumulators cannot all stay in registers. Groups shrink before lanes would drop below the
 * adapter's smallest subgroup, which is 8 on lavapipe (one SIMD instruction), where 4 lanes ran 1.2-1.5x
 * slower. Narrow or short outputs get fewer lanes or rows (powers of two), so that an [.., 64, 16]
 * attention product does not compute four times the columns it stores.
 * NOTE: measured on a CPU adapter only (lavapipe, Mesa 25.0, 2 cores). These were no faster there: vec4
 * loads of A (four steps of k, or four rows of A^T), unrolling k by 2 or 4, and 1 or 2 columns per
 * invocation. Neither were 16 x 24 or 16 x 32 blocks, or 24 or 32 rows. GPU adapters take gpuTiling().
 */
export function matmulTiling(limits: GPUSupportedLimits, m: number, n: number, subgroupMinSize?: number, software = true): MatmulTiling {
  if (!software) return gpuTiling(limits, m, n);
  const maxLanes = Math.min(16, limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup);
  const minLanes = Math.min(maxLanes, subgroupMinSize ?? maxLanes);
  const groups = [4, 2, 1].find((g) => g === 1 || n >= 4 * g * minLanes)!;
  const lanes = Math.min(maxLanes, nextPowerOfTwo(Math.ceil(n / (4 * groups))));
  const rows = Math.min(16, nextPowerOfTwo(m));
  return { lanes, rows, groups };
}

/**
 * Chooses the workgroup shape on a GPU adapter: 4 x 4 outputs per invocation, whose 16 accumulators fit in
 * registers, and up to 64 invocations side by side along n. The blocks above won on a CPU adapter, but
 * their 256 accumulators would spill to memory on a GPU and leave few invocations per core.
 * NOTE: not timed on a GPU, because none was available; the tests check its results on lavapipe.
 */
function gpuTiling(limits: GPUSupportedLimits, m: number, n: number): MatmulTiling {
  const maxLanes = Math.min(64, limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup);
  return { lanes: Math.min(maxLanes, nextPowerOfTwo(Math.ceil(n / 4))), rows: Math.min(4, nextPowerOfTwo(m)), groups: 1 };
}

function nextPowerOfTwo(x: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(x, 1)));
}

/**
 * Picks the widest load that the strides of B allow. Vector loads need element offsets that are
 * multiples of 4 (every batch stride too), because a vec4 binding indexes in units of four elements.
 */
export function matmulLoad(bStrides: readonly number[], bOffset: number): MatmulLoad {
  const rank = bStrides.length;
  const [rowStride, colStride] = [bStrides[rank - 2], bStrides[rank - 1]];
  const aligned = bOffset % 4 === 0 && bStrides.slice(0, rank - 2).every((s) => s % 4 === 0);
  return aligned && colStride === 1 && rowStride % 4 === 0 ? 'n4' : 'strided';
}

/**
 * Register-blocked matmul with no shared memory: workgroup (x, y, z) covers `rows` rows of out from
 * x * rows, 4 * groups * lanes columns from y * 4 * groups * lanes, and batch z. Each invocation keeps a
 * rows x (4 * groups) block of accumulators, one vec4 per row and group. Every invocation of a workgroup
 * reads the same A entries, and each reads its own 4 * groups columns of B, as vec4s where `load` allows.
 * Rows and columns past the edge are clamped on load and skipped on store. The rows and groups are written
 * out as named variables instead of loops over arrays, so that no accumulator depends on the compiler
 * unrolling a loop to stay out of memory. Workgroups that share a column strip run one after the other
 * (x is the row block), so that strip of B stays in cache.
 * uniforms.w[0] = (M, N, K, batchRank), w[1] = (A row, A col, B row, B col strides),
 * w[2] = (A offset, B offset, first batch), w[3..4] = batch shape, w[5..6] and w[7..8] = batch strides of A and B,
 * w[9] = (bias offset, bias stride). With an epilogue, out = act(sum + bias[col]) and pre = sum + bias[col].
 */
export function matmulKernel(dtype: DType, load: MatmulLoad, tiling: MatmulTiling, epilogue: MatmulEpilogueKind = { bias: false, activation: null }): string {
  const s = storageType(dtype);
  const { lanes, rows, groups } = tiling;
  const bType = load === 'strided' ? s : `vec4<${s}>`;
  const act = epilogue.activation ? ACTIVATION[epilogue.activation] : null;
  const bindings = [
    epilogue.bias ? `@group(0) @binding(4) var<storage, read> Bias: array<${s}>;` : '',
    act ? `@group(0) @binding(${epilogue.bias ? 5 : 4}) var<storage, read_write> pre: array<${s}>;` : '',
  ].filter(Boolean).join('\n');
  const store = [
    act ? `pre[rowStart + col] = ${s}(v[c]);` : '',
    `out[rowStart + col] = ${s}(y[c]);`,
  ].filter(Boolean).join('\n      ');
  // The bias of each group of four columns (columns past N clamp). Without an activation it starts the
  // accumulators; with one it is added in storeFour. NOTE: on lavapipe each of these two placements was
  // 10-25% slower than the other for one of the two kernels, so each kernel takes its faster one.
  const biasInStore = epilogue.bias && act !== null;
  const biasAt = (g: number, c: number) =>
    `f32(Bias[uniforms.w[${MATMUL_META.bias}].x + min(col0 + ${4 * g + c}u, N - 1u) * uniforms.w[${MATMUL_META.bias}].y])`;
  const biasLoads = epilogue.bias
    ? Array.from({ length: groups }, (_, g) => `  let bias${g} = vec4<f32>(${[0, 1, 2, 3].map((c) => biasAt(g, c)).join(', ')});`).join('\n')
    : '';
  const blocks = Array.from({ length: rows }, (_, r) => Array.from({ length: groups }, (_, g) => [r, g])).flat();
  return `${usesF16([dtype])}struct Uniforms { w: array<vec4<u32>, ${MATMUL_META.rows}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${META_ACCESS}${act ? act.helper : ''}
@group(0) @binding(1) var<storage, read_write> out: array<${s}>;
@group(0) @binding(2) var<storage, read> A: array<${s}>;
@group(0) @binding(3) var<storage, read> B: array<${bType}>;
${bindings}

// Stores four sums of one row from column col0 (after the epilogue), skipping columns past N.
fn storeFour(rowStart: u32, col0: u32, N: u32, sum: vec4<f32>${biasInStore ? ', bias: vec4<f32>' : ''}) {
  let v = sum${biasInStore ? ' + bias' : ''};
  let y = ${act ? act.expr : 'v'};
  for (var c = 0u; c < 4u; c++) {
    let col = col0 + c;
    if (col < N) {
      ${store}
    }
  }
}

@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = uniforms.w[0].x;
  let N = uniforms.w[0].y;
  let K = uniforms.w[0].z;
  let st = uniforms.w[1];
  let batch = wid.z + uniforms.w[2].z;
  var rem = batch;
  var aBase = uniforms.w[2].x;
  var bBase = uniforms.w[2].y;
  for (var d = i32(uniforms.w[0].w) - 1; d >= 0; d--) {
    let size = metaAt(${MATMUL_META.batchShape}u, u32(d));
    let coord = rem % size;
    rem = rem / size;
    aBase += coord * metaAt(${MATMUL_META.aBatch}u, u32(d));
    bBase += coord * metaAt(${MATMUL_META.bBatch}u, u32(d));
  }
  let row0 = wid.x * ${rows}u;
  let col0 = (wid.y * ${lanes}u + lid.x) * ${4 * groups}u;
${Array.from({ length: rows }, (_, r) => `  let aRow${r} = aBase + min(row0 + ${r}u, M - 1u) * st.x;`).join('\n')}
${setupB(load, groups)}
${biasLoads}
${blocks.map(([r, g]) => `  var acc${r}_${g} = ${epilogue.bias && !biasInStore ? `bias${g}` : 'vec4<f32>()'};`).join('\n')}
  for (var k = 0u; k < K; k++) {
${Array.from({ length: groups }, (_, g) => `    let b${g} = ${loadB(load, g)};`).join('\n')}
${Array.from({ length: rows }, (_, r) => `    let a${r} = f32(A[aRow${r} + k * st.y]);`).join('\n')}
${blocks.map(([r, g]) => `    acc${r}_${g} += a${r} * b${g};`).join('\n')}
  }
  let outBase = batch * M * N;
${Array.from({ length: rows }, (_, r) => `  if (row0 + ${r}u < M) {
${Array.from({ length: groups }, (_, g) => `    storeFour(outBase + (row0 + ${r}u) * N, col0 + ${4 * g}u, N, acc${r}_${g}${biasInStore ? `, bias${g}` : ''});`).join('\n')}
  }`).join('\n')}
}`;
}

/** Declares where each group of four columns of this invocation starts in B, in units of B's binding. */
function setupB(load: MatmulLoad, groups: number): string {
  const lines: string[] = [];
  for (let g = 0; g < groups; g++) {
    if (load === 'n4') {
      // The last group of four columns may run past N, into the next row or, at the end of the buffer,
      // into the bounds check's clamp. Those columns are never stored.
      lines.push(`  let bCol${g} = (bBase + min(col0 + ${4 * g}u, (N - 1u) & ~3u)) / 4u;`);
    } else {
      for (let c = 0; c < 4; c++) lines.push(`  let bCol${g}_${c} = bBase + min(col0 + ${4 * g + c}u, N - 1u) * st.w;`);
    }
  }
  if (load === 'n4') lines.push('  let bStep = st.z / 4u;');
  return lines.join('\n');
}

/** Builds the WGSL expression for the vec4<f32> of B at step k in this invocation's group `g` of four columns. */
function loadB(load: MatmulLoad, g: number): string {
  if (load === 'n4') return `vec4<f32>(B[bCol${g} + k * bStep])`;
  const at = (c: number) => `f32(B[bCol${g}_${c} + k * st.z])`;
  return `vec4<f32>(${at(0)}, ${at(1)}, ${at(2)}, ${at(3)})`;
}
