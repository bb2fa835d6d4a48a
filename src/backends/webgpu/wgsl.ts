// WGSL building blocks shared by the generated kernels: type names per dtype and helper functions.

import type { DType } from '../../tensor/dtype.js';

/** The WGSL element type that stores a dtype in a storage buffer (bool is one u32 per element). */
export function storageType(dtype: DType): string {
  switch (dtype) {
    case 'float32': return 'f32';
    case 'float16': return 'f16';
    case 'int32': return 'i32';
    case 'bool': return 'u32';
    case 'float64': throw new Error('float64 has no WGSL type');
  }
}

/** The WGSL type that kernels compute in: float16 is widened to f32 so that accumulation stays in f32. */
export function computeType(dtype: DType): string {
  return dtype === 'float16' ? 'f32' : storageType(dtype);
}

/** Returns a WGSL expression converting `expr` of compute type `from` to storage dtype `to`. */
export function convert(expr: string, from: string, to: DType): string {
  const dest = storageType(to);
  if (to === 'bool') return from === 'bool' ? `select(0u, 1u, ${expr})` : `select(0u, 1u, ${expr} != ${from}(0))`;
  if (from === 'bool') return `select(${dest}(0), ${dest}(1), ${expr})`;
  return from === dest ? expr : `${dest}(${expr})`;
}

export const HELPERS: Record<string, string> = {
  // erf by Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7, which is under f32's resolution near 1.
  erf: `
fn erf_f32(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= 0.0);
}`,
  // tanh through exp overflows for |x| > 44 in f32, so clamp first: tanh(10) is 1 in f32 already.
  tanh: `
fn tanh_f32(x: f32) -> f32 {
  let c = clamp(x, -10.0, 10.0);
  let e = exp(2.0 * c);
  return (e - 1.0) / (e + 1.0);
}`,
  sigmoid: `
fn sigmoid_f32(x: f32) -> f32 {
  return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0);
}`,
};

export function usesF16(dtypes: readonly DType[]): string {
  return dtypes.includes('float16') ? 'enable f16;\n' : '';
}

/** Emits a function that reads entry `d` (0 to 7) of an 8-entry u32 array stored as two vec4 rows of `uniforms.w` from `base`. */
export const META_ACCESS = `
fn metaAt(base: u32, d: u32) -> u32 {
  return uniforms.w[base + d / 4u][d % 4u];
}

// WGSL rejects infinite constants, so -inf is built at run time from a uniform that is always read as 0.
fn negInf() -> f32 {
  return bitcast<f32>(0xff800000u | (uniforms.w[0].x & 0u));
}`;

// WGSL's pow(x, y) is exp2(y * log2(x)), which is NaN for x < 0; integer exponents of negative bases
// are common (x ** 2), so they take the sign from the exponent's parity, and x ** 0 is 1 as in PyTorch.
HELPERS.pow = `
fn pow_f32(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x < 0.0 && y == round(y)) {
    let r = pow(-x, y);
    return select(r, -r, (i32(y) & 1) == 1);
  }
  return pow(x, y);
}`;

/** Emits the shared-memory tree that one workgroup uses to combine its invocations' partial max or sum. */
export function reduceSharedFunction(workgroupSize: number): string {
  return `
var<workgroup> partial: array<f32, ${workgroupSize}>;

fn reduceShared(l: u32, isMax: bool) -> f32 {
  workgroupBarrier();
  for (var step = ${workgroupSize / 2}u; step > 0u; step = step / 2u) {
    if (l < step) {
      partial[l] = select(partial[l] + partial[l + step], max(partial[l], partial[l + step]), isMax);
    }
    workgroupBarrier();
  }
  let result = partial[0];
  workgroupBarrier();
  return result;
}`;
}

/**
 * Emits isNan() on the exponent and mantissa bits, because a compiler may fold `v != v` to false:
 * WGSL lets implementations assume that no NaN occurs in arithmetic.
 */
export function nanFunction(type: string): string {
  const bits = type === 'f32' ? 'u32' : 'vec4<u32>';
  return `fn ${type === 'f32' ? 'isNan' : 'isNan4'}(v: ${type}) -> ${type === 'f32' ? 'bool' : 'vec4<bool>'} {
  return (bitcast<${bits}>(v) & ${bits}(0x7fffffffu)) > ${bits}(0x7f800000u);
}`;
}

/**
 * Emits the loop that finds a row's max and its sum of exp(v - max) in one pass over `value(j)` (a WGSL
 * expression of j), into rowMax and rowSum. When the max grows, the sum so far is rescaled by
 * exp(old max - new max). -inf entries (masked) add nothing, and a NaN makes the whole row NaN, as in torch.
 * The kernel must declare isNan (nanFunction('f32')), negInf (META_ACCESS) and `width`.
 */
export function onlineSoftmaxLoop(value: string): string {
  return `  var rowMax = negInf();
  var rowSum = 0.0;
  for (var j = 0u; j < width; j++) {
    let v = ${value};
    if (isNan(v)) {
      rowSum = v;
    } else if (v > rowMax) {
      rowSum = rowSum * exp(rowMax - v) + 1.0;
      rowMax = v;
    } else if (v > negInf()) {
      rowSum += exp(v - rowMax);
    }
  }`;
}
