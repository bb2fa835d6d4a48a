// Adam and AdamW on WebGPU: one kernel updates several parameters per dispatch, in place. WGSL cannot
// index bindings at run time, so each parameter of a dispatch has its own bindings (x, grad, m, v and,
// with amsgrad, vmax) and a switch picks them. Each parameter's segment of the grid is rounded up to
// whole workgroups, so a workgroup works on one parameter only and never diverges on the switch.

import type { AdamKernelOptions, AdamStepOptions, AdamStepTarget } from '../backend.js';
import { adamScalars, checkAdamTargets } from '../adam.js';
import type { DType } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import { UNIFORM_BINDING_SIZE } from './bindings.js';
import type { KernelRunner } from './layernorm.js';
import { storageType, usesF16 } from './wgsl.js';

/** Uniform rows (vec4<u32>) before the per-parameter rows: the hyperparameters shared by the dispatch. */
const HEADER_ROWS = 2;
/** Uniform rows that fit one dispatch's uniform slot. */
const UNIFORM_ROWS = UNIFORM_BINDING_SIZE / 16;

/** Storage buffers one parameter binds: x, grad, m, v, and vmax with amsgrad. */
function buffersPerParam(amsgrad: boolean): number {
  return amsgrad ? 5 : 4;
}

/** Uniform rows per parameter: (first workgroup, count, x offset, grad offset), (m offset, v offset, stepSize, sqrt(1 - beta2^t)), (vmax offset). */
function rowsPerParam(amsgrad: boolean): number {
  return amsgrad ? 3 : 2;
}

/**
 * Returns the maximum number of parameters one dispatch can update: the adapter's storage buffers per shader stage
 * divided by the buffers of one parameter, and at most what the 256-byte uniform slot describes.
 */
export function adamParamsPerDispatch(maxStorageBuffers: number, amsgrad: boolean): number {
  const byBuffers = Math.floor(maxStorageBuffers / buffersPerParam(amsgrad));
  const byUniforms = Math.floor((UNIFORM_ROWS - HEADER_ROWS) / rowsPerParam(amsgrad));
  const count = Math.min(byBuffers, byUniforms);
  if (count < 1) {
    throw new Error(`adamStep: the adapter offers ${maxStorageBuffers} storage buffers per shader stage, fewer than the ${buffersPerParam(amsgrad)} one parameter needs`);
  }
  return count;
}

interface AdamKernelSignature {
  dtype: DType;
  params: number;
  amsgrad: boolean;
  maximize: boolean;
}

/**
 * Generates the WGSL of one dispatch over `params` parameters. Uniform rows 0 and 1 hold (beta1, 1 - beta1,
 * beta2, 1 - beta2) and (eps, l2, decay, total workgroups), and each parameter has rowsPerParam rows after them.
 * Workgroup w of the flattened 2-D grid belongs to the last parameter whose first workgroup is <= w. Its
 * invocation `lane` updates element (w - first) * workgroupSize + lane of that parameter.
 */
export function adamKernel(sig: AdamKernelSignature, workgroupSize: number): string {
  const t = storageType(sig.dtype);
  const rows = rowsPerParam(sig.amsgrad);
  const names = sig.amsgrad ? ['x', 'g', 'm', 'v', 'vmax'] : ['x', 'g', 'm', 'v'];
  const bindings: string[] = [];
  const cases: string[] = [];
  const selects: string[] = [];
  for (let p = 0; p < sig.params; p++) {
    names.forEach((name, k) => {
      const access = name === 'g' ? 'read' : 'read_write';
      bindings.push(`@group(0) @binding(${1 + p * names.length + k}) var<storage, ${access}> ${name}${p}: array<${t}>;`);
    });
    if (p > 0) selects.push(`  if (flatGroup >= uniforms.w[${HEADER_ROWS + p * rows}].x) { slot = ${p}u; }`);
    const vmaxArgs = sig.amsgrad ? `f32(vmax${p}[o.vmax])` : '0.0';
    const store = [
      `      x${p}[o.x] = ${t}(u.x);`,
      `      m${p}[o.m] = ${t}(u.m);`,
      `      v${p}[o.v] = ${t}(u.v);`,
      ...(sig.amsgrad ? [`      vmax${p}[o.vmax] = ${t}(u.vmax);`] : []),
    ];
    cases.push([
      `    case ${p}u: {`,
      `      let u = adamUpdate(row, f32(x${p}[o.x]), f32(g${p}[o.g]), f32(m${p}[o.m]), f32(v${p}[o.v]), ${vmaxArgs});`,
      ...store,
      '    }',
    ].join('\n'));
  }
  // The update reads m and v rounded to the storage type, as the CPU backend does by reading them back.
  const rounded = (expr: string) => (t === 'f32' ? expr : `f32(${t}(${expr}))`);
  const second = sig.amsgrad ? 'nextVmax' : 'nextV';
  return `${usesF16([sig.dtype])}
struct Uniforms { w: array<vec4<u32>, ${UNIFORM_ROWS}> }
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
${bindings.join('\n')}

struct Offsets { x: u32, g: u32, m: u32, v: u32, vmax: u32 }
struct Update { x: f32, m: f32, v: f32, vmax: f32 }

// d = ${sig.maximize ? '-g' : 'g'} + l2 * x;  m = beta1 * m + (1 - beta1) * d;  v = beta2 * v + (1 - beta2) * d^2;${sig.amsgrad ? '  vmax = max(vmax, v);' : ''}
// x = x * decay - stepSize * m / (sqrt(${sig.amsgrad ? 'vmax' : 'v'}) / sqrt(1 - beta2^t) + eps), with per-parameter stepSize and sqrt(1 - beta2^t).
fn adamUpdate(row: u32, x: f32, g: f32, m: f32, v: f32, vmax: f32) -> Update {
  let betas = bitcast<vec4<f32>>(uniforms.w[0]);
  let hyper = bitcast<vec4<f32>>(uniforms.w[1]);
  let perParam = bitcast<vec4<f32>>(uniforms.w[row + 1u]);
  let d = ${sig.maximize ? '-g' : 'g'} + hyper.y * x;
  let nextM = ${rounded('betas.x * m + betas.y * d')};
  let nextV = ${rounded('betas.z * v + betas.w * (d * d)')};
  let nextVmax = ${sig.amsgrad ? 'max(vmax, nextV)' : 'vmax'};
  let nextX = x * hyper.z - perParam.z * (nextM / (sqrt(${second}) / perParam.w + hyper.x));
  return Update(nextX, nextM, nextV, nextVmax);
}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) grid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let flatGroup = wid.y * grid.x + wid.x;
  if (flatGroup >= uniforms.w[1].w) { return; }
  var slot = 0u;
${selects.join('\n')}
  let row = ${HEADER_ROWS}u + slot * ${rows}u;
  let head = uniforms.w[row];
  let i = (flatGroup - head.x) * ${workgroupSize}u + lane;
  if (i >= head.y) { return; }
  let tail = uniforms.w[row + 1u];
  let o = Offsets(head.z + i, head.w + i, tail.x + i, tail.y + i, ${sig.amsgrad ? 'uniforms.w[row + 2u].x + i' : '0u'});
  switch slot {
${cases.join('\n')}
    default: {}
  }
}
`;
}

/**
 * Splits the targets into dispatches of at most `size` parameters of one dtype. A parameter whose buffers
 * another one of the dispatch already binds (two parameters that view one storage) starts a new dispatch,
 * because WebGPU rejects a buffer bound writable twice, or writable and read-only, in one dispatch.
 */
function planDispatches(targets: readonly AdamStepTarget[], size: number, amsgrad: boolean): AdamStepTarget[][] {
  const chunks: AdamStepTarget[][] = [];
  let current: AdamStepTarget[] = [];
  let written = new Set<unknown>();
  let read = new Set<unknown>();
  for (const t of targets) {
    if (numel(t.param.shape) === 0) continue;
    const writes = [t.param, t.expAvg, t.expAvgSq, ...(amsgrad ? [t.maxExpAvgSq!] : [])].map((v) => v.storage);
    const clash = writes.some((s) => written.has(s) || read.has(s)) || written.has(t.grad.storage);
    const sameDType = current.length === 0 || current[0].param.storage.dtype === t.param.storage.dtype;
    if (current.length === size || clash || !sameDType) {
      if (current.length > 0) chunks.push(current);
      current = [];
      written = new Set();
      read = new Set();
    }
    current.push(t);
    writes.forEach((s) => written.add(s));
    read.add(t.grad.storage);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Records the dispatches of one Adam step over `targets` (see Backend.adamStep). */
export function adamStepWebGpu(
  runner: KernelRunner, maxStorageBuffers: number, targets: readonly AdamStepTarget[], h: AdamStepOptions, options: AdamKernelOptions = {},
): void {
  checkAdamTargets(targets, h);
  const limit = adamParamsPerDispatch(maxStorageBuffers, h.amsgrad);
  const size = options.paramsPerDispatch ?? limit;
  if (!Number.isInteger(size) || size < 1 || size > limit) {
    throw new RangeError(`adamStep: paramsPerDispatch must be an integer from 1 to ${limit} on this adapter, got ${size}`);
  }
  const rows = rowsPerParam(h.amsgrad);
  for (const chunk of planDispatches(targets, size, h.amsgrad)) {
    const dtype = chunk[0].param.storage.dtype;
    if (dtype === 'float16' && !runner.hasF16) throw new Error('adamStep: float16 parameters need the shader-f16 feature, which this adapter lacks');
    const words = new Uint32Array((HEADER_ROWS + chunk.length * rows) * 4);
    const floats = new Float32Array(words.buffer);
    const { l2, decay } = adamScalars(1, h);
    floats.set([h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, h.eps, l2, decay]);
    const buffers: GPUBuffer[] = [];
    let groups = 0;
    chunk.forEach((t, p) => {
      const base = (HEADER_ROWS + p * rows) * 4;
      const count = numel(t.param.shape);
      const s = adamScalars(t.step, h);
      words.set([groups, count, t.param.offset, t.grad.offset, t.expAvg.offset, t.expAvgSq.offset], base);
      floats.set([s.stepSize, s.sqrtBiasCorrection2], base + 6);
      if (h.amsgrad) words[base + 8] = t.maxExpAvgSq!.offset;
      const views = h.amsgrad ? [t.param, t.grad, t.expAvg, t.expAvgSq, t.maxExpAvgSq!] : [t.param, t.grad, t.expAvg, t.expAvgSq];
      for (const view of views) buffers.push((view.storage.data as { buffer: GPUBuffer }).buffer);
      groups += Math.ceil(count / runner.workgroupSize);
    });
    words[7] = groups;
    const sig = { dtype, params: chunk.length, amsgrad: h.amsgrad, maximize: h.maximize };
    const key = `adam:${dtype}:${chunk.length}:${h.amsgrad}:${h.maximize}`;
    runner.run(key, () => adamKernel(sig, runner.workgroupSize), words, buffers, groups);
  }
}
