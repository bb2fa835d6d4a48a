// Sum, max and min over the trailing dims of a strided view, without workgroup barriers. Each invocation
// walks one chunk of one output row. When a row is split into several chunks, a second dispatch of the
// same kernel reduces the partial results. Barriers cost about 100 µs per workgroup on lavapipe (Mesa 25),
// so a tree in shared memory loses there to a second dispatch over a small buffer.

import type { Storage, View } from '../backend.js';
import type { DType } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import { coalesceDims } from './coalesce.js';
import type { KernelRunner } from './layernorm.js';
import { META_ACCESS, computeType, convert, nanFunction, storageType, usesF16 } from './wgsl.js';

/**
 * Layout of the uniform rows. w[0] = (rows, size, chunkLength, chunks), counted in loaded elements (vec4s
 * or scalars). The kept and the reduced dims each have a shape and a stride list of up to 8 entries, and
 * w[9] = (offset, keptRank, reducedRank).
 */
export const REDUCTION_META = { header: 0, keptShape: 1, keptStrides: 3, reducedShape: 5, reducedStrides: 7, layout: 9, rows: 10 };

/**
 * The kernel's load layout. 'scalar' loads one element at a time. 'columns' owns four adjacent output rows
 * (kept stride 1) and loads them as one vec4. 'rows' loads four consecutive elements of one row (reduced
 * stride 1) and folds them into one result at the end.
 */
export type ReductionVector = 'scalar' | 'columns' | 'rows';

export interface ReductionSignature {
  op: 'sum' | 'max' | 'min';
  input: DType;
  out: DType;
  /** The kept dims coalesce to at most one, so a row starts at offset + row * stride. */
  keptLinear: boolean;
  /** The reduced dims coalesce to at most one, so element r of a row is at r * stride from its start. */
  reducedLinear: boolean;
  vector: ReductionVector;
}

/** The reductions this file runs; argmax and argmin keep the per-row kernel in kernels.ts. */
export type ReductionOp = ReductionSignature['op'];

/**
 * out[chunk * rows + row] = reduce over r in [chunk * chunkLength, min((chunk + 1) * chunkLength, size))
 * of x[rowStart(row) + elementOffset(r)]: one invocation per (row, chunk), rows varying fastest, so that
 * neighbouring invocations read neighbouring columns when the kept dim has stride 1.
 * max and min propagate NaN, as torch.amax does.
 */
export function reductionKernel(sig: ReductionSignature, workgroupSize: number): string {
  const c = computeType(sig.input);
  const scalar = sig.vector === 'scalar';
  const loaded = scalar ? storageType(sig.input) : 'vec4<f32>';
  const accumulator = scalar ? c : 'vec4<f32>';
  const written = sig.vector === 'columns' ? 'vec4<f32>' : storageType(sig.out);
  const m = REDUCTION_META;

  const load = scalar ? `${c}(x[at])` : 'x[at]';
  const better = sig.op === 'max' ? '>' : '<';
  const nan = c === 'f32' ? ` | ${scalar ? 'isNan' : 'isNan4'}(v)` : '';
  const combine = sig.op === 'sum' ? 'acc = acc + v;' : `acc = select(acc, v, (v ${better} acc)${nan});`;

  const rowStart = sig.keptLinear
    ? `uniforms.w[${m.layout}].x + row * uniforms.w[${m.keptStrides}].x`
    : 'rowStart(row)';
  const walk = sig.reducedLinear
    ? [
        `let step = uniforms.w[${m.reducedStrides}].x;`,
        `var at = base + first * step;`,
        `for (var r = first; r < last; r++) {`,
        `    let v = ${load};`,
        `    ${combine}`,
        `    at += step;`,
        `  }`,
      ]
    : [
        `for (var r = first; r < last; r++) {`,
        `    let at = base + elementOffset(r);`,
        `    let v = ${load};`,
        `    ${combine}`,
        `  }`,
      ];
  return `${usesF16([sig.input, sig.out])}struct Uniforms { w: array<vec4<u32>, ${m.rows}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${META_ACCESS}
@group(0) @binding(1) var<storage, read_write> out: array<${written}>;
@group(0) @binding(2) var<storage, read> x: array<${loaded}>;

${walkFunction('rowStart', 'row', m.keptShape, m.keptStrides, `uniforms.w[${m.layout}].y`, `uniforms.w[${m.layout}].x`)}
${walkFunction('elementOffset', 'r', m.reducedShape, m.reducedStrides, `uniforms.w[${m.layout}].z`, '0u')}
${c === 'f32' ? nanFunction('f32') : ''}
${c === 'f32' && !scalar ? nanFunction('vec4<f32>') : ''}
${fold(sig, c)}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${workgroupSize}u;
  let rows = uniforms.w[0].x;
  if (i >= rows * uniforms.w[0].w) { return; }
  let row = i % rows;
  let first = (i / rows) * uniforms.w[0].z;
  let last = min(first + uniforms.w[0].z, uniforms.w[0].y);
  let base = ${rowStart};
  var acc = ${initial(sig.op, accumulator, c)};
  ${walk.join('\n  ')}
  out[i] = ${sig.vector === 'rows' ? convert('fold(acc)', 'f32', sig.out) : sig.vector === 'columns' ? 'acc' : convert('acc', c, sig.out)};
}`;
}

/** Emits a WGSL function mapping a flat index over `rank` dims (shape and strides at two uniform rows) to an offset. */
function walkFunction(name: string, index: string, shapeRow: number, strideRow: number, rank: string, start: string): string {
  return `fn ${name}(${index}: u32) -> u32 {
  var rem = ${index};
  var offset = ${start};
  for (var d = i32(${rank}) - 1; d >= 0; d--) {
    let size = metaAt(${shapeRow}u, u32(d));
    offset += (rem % size) * metaAt(${strideRow}u, u32(d));
    rem = rem / size;
  }
  return offset;
}`;
}

/** Emits fold(), which combines the four lanes of a 'rows' accumulator, or nothing for the other layouts. */
function fold(sig: ReductionSignature, c: string): string {
  if (sig.vector !== 'rows') return '';
  if (sig.op === 'sum') return `fn fold(acc: vec4<f32>) -> ${c} { return (acc.x + acc.y) + (acc.z + acc.w); }`;
  const better = sig.op === 'max' ? '>' : '<';
  return `fn fold(acc: vec4<f32>) -> ${c} {
  var best = acc.x;
  for (var k = 1; k < 4; k++) { best = select(best, acc[k], (acc[k] ${better} best) | isNan(acc[k])); }
  return best;
}`;
}

/** Returns the op's identity in the accumulator's type: 0 for sums, -inf (or the type's minimum) for max. */
function initial(op: ReductionOp, accumulator: string, c: string): string {
  if (op === 'sum') return `${accumulator}(0)`;
  if (c === 'f32') return `${accumulator}(${op === 'max' ? 'negInf()' : '-negInf()'})`;
  if (c === 'i32') return op === 'max' ? 'i32(-2147483647 - 1)' : '2147483647';
  return op === 'max' ? '0u' : '4294967295u';
}

/** The walk of one dispatch: its coalesced kept and reduced dims, load layout and chunking. */
export interface ReductionPlan {
  kept: { shape: number[]; strides: number[] };
  reduced: { shape: number[]; strides: number[] };
  offset: number;
  vector: ReductionVector;
  rows: number;
  size: number;
  chunks: number;
  chunkLength: number;
}

/**
 * Reduces the trailing `reducedDims` dims of x with sum, max or min into a new contiguous storage of
 * `outDType` holding one value per row of the leading dims.
 */
export function reduceWebGpu(runner: KernelRunner, op: ReductionOp, x: View, reducedDims: number, outDType: DType): Storage {
  const split = x.shape.length - reducedDims;
  const rows = numel(x.shape.slice(0, split));
  const out = runner.allocate(outDType, rows);
  if (rows === 0) return out;
  const kept = coalesceDims(x.shape.slice(0, split), [x.strides.slice(0, split)]);
  const reduced = coalesceDims(x.shape.slice(split), [x.strides.slice(split)]);
  const partialDType: DType = computeType(x.storage.dtype) === 'f32' ? 'float32' : x.storage.dtype;
  const first = planReduction(runner.workgroupSize, x.storage.dtype, partialDType, { shape: kept.shape, strides: kept.strides[0] }, { shape: reduced.shape, strides: reduced.strides[0] }, x.offset, true);
  if (first.chunks === 1) {
    dispatch(runner, op, x.storage, outDType, first, out);
    return out;
  }

  // Pass 1 writes partial results [chunks, rows] in the compute type, which is f32 for float16 so that
  // the partial sums keep f32 precision. Pass 2 reduces each row's chunks into the output.
  const partial = runner.allocate(partialDType, first.chunks * rows);
  dispatch(runner, op, x.storage, partialDType, first, partial);
  const second = planReduction(runner.workgroupSize, partialDType, outDType, { shape: [rows], strides: [1] }, { shape: [first.chunks], strides: [rows] }, 0, false);
  dispatch(runner, op, partial, outDType, second, out);
  runner.free(partial);
  return out;
}

/**
 * Returns how many chunks to split each of `rows` walks of `size` steps into. Chunks of about sqrt(size)
 * steps keep both passes' walks short, but only until the invocations reach `target`: beyond that the
 * rows alone keep the adapter busy, and a second pass would only add work.
 */
export function chunkCount(size: number, rows: number, target: number): number {
  if (size <= 1) return 1;
  const bySize = Math.ceil(size / Math.ceil(Math.sqrt(size)));
  return Math.max(1, Math.min(bySize, Math.ceil(target / rows)));
}

/** Chooses the load layout and the chunks (see chunkCount) for one pass that reads `dtype` and writes `outDType`. */
export function planReduction(
  workgroupSize: number, dtype: DType, outDType: DType, kept: { shape: number[]; strides: number[] }, reduced: { shape: number[]; strides: number[] },
  offset: number, mayChunk: boolean,
): ReductionPlan {
  let rows = numel(kept.shape);
  let size = numel(reduced.shape);
  const keptLinear = kept.shape.length <= 1;
  const reducedLinear = reduced.shape.length <= 1;
  const aligned = (stride: number) => stride % 4 === 0;
  let vector: ReductionVector = 'scalar';
  if (dtype === 'float32' && offset % 4 === 0) {
    if (outDType === 'float32' && keptLinear && kept.strides[0] === 1 && rows % 4 === 0 && reduced.strides.every(aligned)) vector = 'columns';
    else if (reducedLinear && reduced.strides[0] === 1 && size % 4 === 0 && kept.strides.every(aligned)) vector = 'rows';
  }

  if (vector === 'columns') rows /= 4;
  if (vector === 'rows') size /= 4;
  // In vec4 units the vectorized dim keeps stride 1 and every other stride, a multiple of 4, shrinks by 4.
  const scale = (strides: number[]) => (vector === 'scalar' ? strides : strides.map((s) => (s === 1 ? 1 : s / 4)));

  let chunks = mayChunk ? chunkCount(size, rows, workgroupSize * workgroupSize) : 1;
  const chunkLength = Math.max(1, Math.ceil(size / chunks));
  chunks = Math.max(1, Math.ceil(size / chunkLength));
  return {
    kept: { shape: vector === 'columns' ? [rows] : kept.shape, strides: scale(kept.strides) },
    reduced: { shape: vector === 'rows' ? [size] : reduced.shape, strides: scale(reduced.strides) },
    offset: vector === 'scalar' ? offset : offset / 4,
    vector,
    rows,
    size,
    chunks,
    chunkLength,
  };
}

function dispatch(runner: KernelRunner, op: ReductionOp, x: Storage, outDType: DType, p: ReductionPlan, out: Storage): void {
  const sig: ReductionSignature = {
    op,
    input: x.dtype,
    out: outDType,
    keptLinear: p.kept.shape.length <= 1,
    reducedLinear: p.reduced.shape.length <= 1,
    vector: p.vector,
  };
  const key = `reduction:${op}:${x.dtype}:${outDType}:${sig.keptLinear ? 'linear' : 'strided'}:${sig.reducedLinear ? 'linear' : 'strided'}:${p.vector}`;
  const m = REDUCTION_META;
  const u = new Uint32Array(m.rows * 4);
  u.set([p.rows, p.size, p.chunkLength, p.chunks]);
  p.kept.shape.forEach((d, k) => (u[m.keptShape * 4 + k] = d));
  p.kept.strides.forEach((s, k) => (u[m.keptStrides * 4 + k] = s));
  p.reduced.shape.forEach((d, k) => (u[m.reducedShape * 4 + k] = d));
  p.reduced.strides.forEach((s, k) => (u[m.reducedStrides * 4 + k] = s));
  u.set([p.offset, p.kept.shape.length, p.reduced.shape.length], m.layout * 4);
  const invocations = p.rows * p.chunks;
  runner.run(key, () => reductionKernel(sig, runner.workgroupSize), u, [bufferOf(out), bufferOf(x)], Math.ceil(invocations / runner.workgroupSize));
}

function bufferOf(storage: Storage): GPUBuffer {
  return (storage.data as { buffer: GPUBuffer }).buffer;
}
