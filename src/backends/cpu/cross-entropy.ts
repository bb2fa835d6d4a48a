// Cross entropy on the CPU backend, the oracle for the WGSL kernels: plain loops in float64 over rows of
// logits [...rows, C] read through their strides. float32 and float16 results are rounded when stored.

import type { View } from '../backend.js';
import { TypedArray, hostArray } from '../../tensor/dtype.js';
import { statsDType } from './layernorm.js';
import { viewOffsets } from './cpu-backend.js';

export interface CpuCrossEntropyOutputs {
  loss: TypedArray;
  lse: TypedArray;
}

/** Reads a 1-D view into a float64 array. */
function readRows(view: View): Float64Array {
  const src = view.storage.data as TypedArray;
  const offsets = viewOffsets(view);
  return Float64Array.from(offsets, (o) => src[o]);
}

/**
 * Per row: lse = max + log(sum_j exp(x_j - max)), and loss = (1 - s) * (lse - x_t) + s * (lse - mean_j x_j),
 * or 0 where t == ignoreIndex. A row of only -Infinity gets lse = -Infinity, as the WGSL kernel's online sum does.
 */
export function crossEntropyCpu(logits: View, target: View, ignoreIndex: number, smoothing: number): CpuCrossEntropyOutputs {
  const src = logits.storage.data as TypedArray;
  const offsets = viewOffsets(logits);
  const classes = logits.shape[logits.shape.length - 1];
  const targets = readRows(target);
  const rows = targets.length;
  const dtype = logits.storage.dtype;
  const loss = hostArray(dtype, rows);
  const lse = hostArray(statsDType(dtype), rows);
  for (let r = 0; r < rows; r++) {
    const base = r * classes;
    let max = -Infinity;
    let sumX = 0;
    for (let j = 0; j < classes; j++) {
      const v = src[offsets[base + j]];
      max = Math.max(max, v);
      sumX += v;
    }
    let rowLse = -Infinity;
    if (max !== -Infinity) {
      let sum = 0;
      for (let j = 0; j < classes; j++) sum += Math.exp(src[offsets[base + j]] - max);
      rowLse = max + Math.log(sum);
    }
    lse[r] = rowLse;
    const t = targets[r];
    if (t === ignoreIndex) continue;
    let value = (1 - smoothing) * (rowLse - src[offsets[base + t]]);
    if (smoothing > 0) value += smoothing * (rowLse - sumX / classes);
    loss[r] = value;
  }
  return { loss, lse };
}

/** dx = g_row * (exp(x - lse) - (1 - s) * [j == t] - s / C) on rows with t != ignoreIndex, 0 elsewhere. */
export function crossEntropyBackwardCpu(grad: View, logits: View, target: View, lse: View, ignoreIndex: number, smoothing: number): TypedArray {
  const src = logits.storage.data as TypedArray;
  const offsets = viewOffsets(logits);
  const classes = logits.shape[logits.shape.length - 1];
  const g = readRows(grad);
  const targets = readRows(target);
  const lses = readRows(lse);
  const dx = hostArray(logits.storage.dtype, offsets.length);
  const uniform = smoothing / classes;
  for (let r = 0; r < targets.length; r++) {
    const t = targets[r];
    if (t === ignoreIndex) continue;
    const base = r * classes;
    for (let j = 0; j < classes; j++) {
      const p = Math.exp(src[offsets[base + j]] - lses[r]);
      dx[base + j] = g[r] * (p - (j === t ? 1 - smoothing : 0) - uniform);
    }
  }
  return dx;
}
