// The matmul kernel family: out[b, i, j] = sum_k A[b, i, k] * B[b, k, j], read through strides so that
// transposed operands and broadcast batch dims cost no copy.

import type { MatmulActivation } from '../backend.js';
import type { DType } from '../../tensor/dtype.js';
import { HELPERS, META_ACCESS, storageType, usesF16 } from './wgsl.js';

/** Layout of the uniform rows: see the comment on matmulKernel. */
export const MATMUL_META = { sizes: 0, strides: 1, offsets: 2, batchShape: 3, aBatch: 5, bBatch: 7, bias: 9, rows: 10 };

/**
 * What the kernel does to each sum before it stores it: add a bias along n, then apply an activation whose
 * input is also stored (backward needs it). Fusing these saves one dispatch and one pass over the output each.
 */
export interface MatmulEpilogueKind {
  bias: boolean;
  activation: MatmulActivation | null;
}

/** The activations as WGSL expressions of v, the same formulas as the elementwise gelu kernels. */
const ACTIVATION: Record<MatmulActivation, { expr: string; helper: string }> = {
  gelu: { expr: 'v * 0.5 * (1.0 + erf_f32(v * 0.70710678118654752))', helper: 'erf' },
  geluTanh: { expr: '0.5 * v * (1.0 + tanh_f32(0.7978845608028654 * (v + 0.044715 * v * v * v)))', helper: 'tanh' },
};

/**
 * How a kernel reads B: 'n4' loads four neighbouring columns as one vec4 (B's column stride is 1), and
 * 'strided' loads scalars through both strides. NOTE: a vec4 load along k for x @ W^T (B's row stride
 * is 1) measured 2x slower than 'strided' on lavapipe, so that layout takes the strided path.
 */
export type MatmulLoad = 'n4' | 'strided';

export interface MatmulTiling {
  /** Invocations per workgroup, each computing `rows` x 4 outputs. */
  lanes: number;
  /** Rows of A that one workgroup covers; every invocation of the workgroup shares them. */
  rows: number;
}

/**
 * Chooses the workgroup shape for an m x n output. On lavapipe, 16 invocations of 16 rows x 4 columns
 * each measured 1.3-2x faster than 4x4, 8x4 and 8x8 blocks in workgroups of 8 to 64 invocations (256 to
 * 1024 squared). Narrow or short outputs get fewer lanes or rows (powers of two), so that an [.., 64, 16]
 * attention product does not compute four times the columns it stores.
 * NOTE: chosen on a CPU adapter only; a GPU would likely prefer larger workgroups with shared-memory tiles.
 */
export function matmulTiling(limits: GPUSupportedLimits, m: number, n: number): MatmulTiling {
  const maxLanes = Math.min(16, limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup);
  const lanes = Math.min(maxLanes, nextPowerOfTwo(Math.ceil(n / 4)));
  const rows = Math.min(16, nextPowerOfTwo(m));
  return { lanes, rows };
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
 * x * rows, 4 * lanes columns from y * 4 * lanes, and batch z. Each invocation keeps a rows x 4 block
 * of accumulators (vec4 per row); every invocation of a workgroup reads the same A entries, and each
 * reads its own four columns of B, with the widest load `load` allows. Rows and columns past the edge
 * are clamped on load and skipped on store. Workgroups that share a column strip run one after the
 * other (x is the row block), so that strip of B stays in cache.
 * uniforms.w[0] = (M, N, K, batchRank), w[1] = (A row, A col, B row, B col strides),
 * w[2] = (A offset, B offset, first batch), w[3..4] = batch shape, w[5..6] and w[7..8] = batch strides of A and B,
 * w[9] = (bias offset, bias stride). With an epilogue, out = act(sum + bias[col]) and pre = sum + bias[col].
 */
export function matmulKernel(dtype: DType, load: MatmulLoad, tiling: MatmulTiling, epilogue: MatmulEpilogueKind = { bias: false, activation: null }): string {
  const s = storageType(dtype);
  const { lanes, rows } = tiling;
  const bType = load === 'strided' ? s : `vec4<${s}>`;
  const act = epilogue.activation ? ACTIVATION[epilogue.activation] : null;
  const bindings = [
    epilogue.bias ? `@group(0) @binding(4) var<storage, read> Bias: array<${s}>;` : '',
    act ? `@group(0) @binding(${epilogue.bias ? 5 : 4}) var<storage, read_write> pre: array<${s}>;` : '',
  ].filter(Boolean).join('\n');
  const store = [
    `var v = acc[r][c];`,
    epilogue.bias ? `v += f32(Bias[uniforms.w[${MATMUL_META.bias}].x + col * uniforms.w[${MATMUL_META.bias}].y]);` : '',
    act ? `pre[outBase + row * N + col] = ${s}(v);` : '',
    `out[outBase + row * N + col] = ${s}(${act ? act.expr : 'v'});`,
  ].filter(Boolean).join('\n        ');
  return `${usesF16([dtype])}struct Uniforms { w: array<vec4<u32>, ${MATMUL_META.rows}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${META_ACCESS}${act ? HELPERS[act.helper] : ''}
@group(0) @binding(1) var<storage, read_write> out: array<${s}>;
@group(0) @binding(2) var<storage, read> A: array<${s}>;
@group(0) @binding(3) var<storage, read> B: array<${bType}>;
${bindings}

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
  let col0 = (wid.y * ${lanes}u + lid.x) * 4u;
  var aRow: array<u32, ${rows}>;
  for (var r = 0u; r < ${rows}u; r++) {
    aRow[r] = aBase + min(row0 + r, M - 1u) * st.x;
  }
  var acc: array<vec4<f32>, ${rows}>;
${loop(load, rows)}
  let outBase = batch * M * N;
  for (var r = 0u; r < ${rows}u; r++) {
    let row = row0 + r;
    if (row >= M) { break; }
    for (var c = 0u; c < 4u; c++) {
      let col = col0 + c;
      if (col < N) {
        ${store}
      }
    }
  }
}`;
}

/** The k loop of matmulKernel for one way of reading B. */
function loop(load: MatmulLoad, rows: number): string {
  if (load === 'n4') {
    // The last group of four columns may run past N (into the next row, or clamped by the bounds
    // check at the end of the buffer); those columns are never stored.
    return `  let bCol = (bBase + min(col0, (N - 1u) & ~3u)) / 4u;
  let bStep = st.z / 4u;
  for (var k = 0u; k < K; k++) {
    let bv = vec4<f32>(B[bCol + k * bStep]);
    let ak = k * st.y;
    for (var r = 0u; r < ${rows}u; r++) {
      acc[r] += f32(A[aRow[r] + ak]) * bv;
    }
  }`;
  }
  return `  var bCol: array<u32, 4>;
  for (var c = 0u; c < 4u; c++) {
    bCol[c] = bBase + min(col0 + c, N - 1u) * st.w;
  }
  for (var k = 0u; k < K; k++) {
    let bk = k * st.z;
    let bv = vec4<f32>(f32(B[bCol[0] + bk]), f32(B[bCol[1] + bk]), f32(B[bCol[2] + bk]), f32(B[bCol[3] + bk]));
    let ak = k * st.y;
    for (var r = 0u; r < ${rows}u; r++) {
      acc[r] += f32(A[aRow[r] + ak]) * bv;
    }
  }`;
}
