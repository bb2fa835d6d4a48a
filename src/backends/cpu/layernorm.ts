// LayerNorm on the CPU backend, the oracle for the WGSL kernels. Every dtype is computed in float64.
// float32 and float16 results are rounded when stored, and their statistics are kept in float32.

import type { View } from '../backend.js';
import { DType, TypedArray, hostArray } from '../../tensor/dtype.js';
import { viewOffsets } from './cpu-backend.js';

export interface CpuLayerNormOutputs {
  out: TypedArray;
  /** Row mean minus the row's first element (see LayerNormOutputs). */
  shiftedMean: TypedArray;
  rstd: TypedArray;
  statsDType: DType;
}

export interface CpuLayerNormGrads {
  dx: TypedArray;
  dweight: TypedArray | null;
  dbias: TypedArray | null;
}

/** Returns the dtype of the row statistics: float64 for float64 input (for gradcheck), float32 for every other dtype. */
export function statsDType(dtype: DType): DType {
  return dtype === 'float64' ? 'float64' : 'float32';
}

/** Reads a view into a float64 array in row-major order, or returns null for a missing operand. */
function readValues(view: View | null): Float64Array | null {
  if (!view) return null;
  const src = view.storage.data as TypedArray;
  const offsets = viewOffsets(view);
  const out = new Float64Array(offsets.length);
  for (let i = 0; i < offsets.length; i++) out[i] = src[offsets[i]];
  return out;
}

/**
 * Per row: shift = x[0], d = x - shift, shiftedMean = sum(d) / n, var = sum((d - shiftedMean)^2) / n.
 * The shift and the second pass keep a large offset from cancelling the spread (no E[x^2] - E[x]^2),
 * and make a constant row give exactly var = 0 and y = bias.
 */
export function layerNormCpu(x: View, width: number, weight: View | null, bias: View | null, eps: number): CpuLayerNormOutputs {
  const values = readValues(x)!;
  const w = readValues(weight);
  const b = readValues(bias);
  const rows = width === 0 ? 0 : values.length / width;
  const dtype = x.storage.dtype;
  const out = hostArray(dtype, values.length);
  const shiftedMean = hostArray(statsDType(dtype), rows);
  const rstd = hostArray(statsDType(dtype), rows);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    const shift = values[base];
    let sum = 0;
    for (let j = 0; j < width; j++) sum += values[base + j] - shift;
    const meanShifted = sum / width;
    let m2 = 0;
    for (let j = 0; j < width; j++) {
      const d = values[base + j] - shift - meanShifted;
      m2 += d * d;
    }
    const inverse = 1 / Math.sqrt(m2 / width + eps);
    shiftedMean[r] = meanShifted;
    rstd[r] = inverse;
    for (let j = 0; j < width; j++) {
      const xhat = (values[base + j] - shift - meanShifted) * inverse;
      out[base + j] = xhat * (w ? w[j] : 1) + (b ? b[j] : 0);
    }
  }
  return { out, shiftedMean, rstd, statsDType: statsDType(dtype) };
}

/**
 * dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w * xhat)) per row with xhat = (x - x[0] - shiftedMean) * rstd
 * from the saved statistics. dweight = sum over rows of g * xhat, and dbias = sum over rows of g.
 */
export function layerNormBackwardCpu(
  grad: View, x: View, width: number, weight: View | null, shiftedMean: View, rstd: View, withBias: boolean,
): CpuLayerNormGrads {
  const g = readValues(grad)!;
  const values = readValues(x)!;
  const w = readValues(weight);
  const means = readValues(shiftedMean)!;
  const rstds = readValues(rstd)!;
  const rows = means.length;
  const dtype = x.storage.dtype;
  const dx = hostArray(dtype, values.length);
  const dweight = w ? new Float64Array(width) : null;
  const dbias = withBias ? new Float64Array(width) : null;
  const xhat = new Float64Array(width);
  const gw = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    const shift = values[base];
    let sumGw = 0;
    let sumGwXhat = 0;
    for (let j = 0; j < width; j++) {
      xhat[j] = (values[base + j] - shift - means[r]) * rstds[r];
      gw[j] = g[base + j] * (w ? w[j] : 1);
      sumGw += gw[j];
      sumGwXhat += gw[j] * xhat[j];
      if (dweight) dweight[j] += g[base + j] * xhat[j];
      if (dbias) dbias[j] += g[base + j];
    }
    const c1 = sumGw / width;
    const c2 = sumGwXhat / width;
    for (let j = 0; j < width; j++) dx[base + j] = rstds[r] * (gw[j] - c1 - xhat[j] * c2);
  }
  // weight and bias share x's dtype (the op checks it), so their gradients take it too.
  const typed = (data: Float64Array | null): TypedArray | null => {
    if (!data) return null;
    const array = hostArray(dtype, data.length);
    array.set(data);
    return array;
  };
  return { dx, dweight: typed(dweight), dbias: typed(dbias) };
}
