// The scaled, masked softmax and the one-pass softmax backward on the CPU backend, the oracle for the WGSL
// kernels. Every dtype is computed in float64 and rounded when stored.

import type { ScaledMaskedSoftmaxOptions, View } from '../backend.js';
import { TypedArray, hostArray } from '../../tensor/dtype.js';
import { viewOffsets } from './cpu-backend.js';

/** Reads a view into a float64 array in row-major order. */
function readValues(view: View): Float64Array {
  const src = view.storage.data as TypedArray;
  const offsets = viewOffsets(view);
  const out = new Float64Array(offsets.length);
  for (let i = 0; i < offsets.length; i++) out[i] = src[offsets[i]];
  return out;
}

/**
 * y = softmax(z) along the last dim with z = scale * x + masks, where a true bool mask entry and, with
 * `causal`, column j > row i (i counted along the second-to-last dim) set z to -inf. A row whose z is all
 * -inf gives NaN, as torch 1.13 does.
 */
export function scaledMaskedSoftmaxCpu(x: View, options: ScaledMaskedSoftmaxOptions): TypedArray {
  const z = readValues(x);
  const rank = x.shape.length;
  const width = x.shape[rank - 1];
  const queries = rank >= 2 ? x.shape[rank - 2] : 1;
  for (let i = 0; i < z.length; i++) z[i] *= options.scale;
  for (const mask of options.masks) {
    const values = readValues(mask);
    const isBool = mask.storage.dtype === 'bool';
    for (let i = 0; i < z.length; i++) {
      if (isBool) {
        if (values[i] !== 0) z[i] = -Infinity;
      } else {
        z[i] += values[i];
      }
    }
  }
  if (options.causal) {
    for (let base = 0, row = 0; base < z.length; base += width, row++) {
      const query = row % queries;
      for (let j = query + 1; j < width; j++) z[base + j] = -Infinity;
    }
  }

  const out = hostArray(x.storage.dtype, z.length);
  for (let base = 0; base < z.length; base += width) {
    let max = -Infinity;
    for (let j = 0; j < width; j++) max = Math.max(max, z[base + j]);
    let sum = 0;
    for (let j = 0; j < width; j++) sum += Math.exp(z[base + j] - max);
    for (let j = 0; j < width; j++) out[base + j] = Math.exp(z[base + j] - max) / sum;
  }
  return out;
}

/** dx = scale * y * (g - sum(g * y)) per row, or dx = g - exp(y) * sum(g) for a logSoftmax output y. */
export function softmaxBackwardCpu(y: View, grad: View, scale: number, log: boolean): TypedArray {
  const ys = readValues(y);
  const g = readValues(grad);
  const width = y.shape[y.shape.length - 1];
  const out = hostArray(y.storage.dtype, ys.length);
  for (let base = 0; base < ys.length; base += width) {
    let total = 0;
    for (let j = 0; j < width; j++) total += log ? g[base + j] : g[base + j] * ys[base + j];
    for (let j = 0; j < width; j++) {
      const k = base + j;
      out[k] = log ? g[k] - Math.exp(ys[k]) * total : scale * ys[k] * (g[k] - total);
    }
  }
  return out;
}
