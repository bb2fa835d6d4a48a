// Backend.adamStep on the CPU: plain loops over each parameter's contiguous storage, in float64 for every
// dtype, with each stored value rounded to its dtype. It is the oracle of the WebGPU kernel.

import type { AdamStepOptions, AdamStepTarget, View } from '../backend.js';
import { adamScalars, checkAdamTargets } from '../adam.js';
import type { TypedArray } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import { roundToFloat16 } from '../../tensor/float16.js';

/**
 * d = (maximize ? -g : g) + l2 * x;  m = beta1 * m + (1 - beta1) * d;  v = beta2 * v + (1 - beta2) * d^2;
 * vmax = max(vmax, v) with amsgrad;  x = x * decay - stepSize * m / (sqrt(vmax or v) / sqrtBiasCorrection2 + eps).
 * The parameter update reads m and v back after storing them, so it uses their float32 or float16 values.
 */
export function adamStepCpu(targets: readonly AdamStepTarget[], h: AdamStepOptions): void {
  checkAdamTargets(targets, h);
  for (const t of targets) {
    const count = numel(t.param.shape);
    const { stepSize, sqrtBiasCorrection2, l2, decay } = adamScalars(t.step, h);
    const x = t.param.storage.data as TypedArray;
    const g = t.grad.storage.data as TypedArray;
    const m = t.expAvg.storage.data as TypedArray;
    const v = t.expAvgSq.storage.data as TypedArray;
    const [xo, go, mo, vo] = [t.param.offset, t.grad.offset, t.expAvg.offset, t.expAvgSq.offset];

    const nextM = new Float64Array(count);
    const nextV = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const d = (h.maximize ? -g[go + i] : g[go + i]) + l2 * x[xo + i];
      nextM[i] = h.beta1 * m[mo + i] + (1 - h.beta1) * d;
      nextV[i] = h.beta2 * v[vo + i] + (1 - h.beta2) * (d * d);
    }
    storeInto(t.expAvg, nextM);
    storeInto(t.expAvgSq, nextV);

    let second = t.expAvgSq;
    if (h.amsgrad) {
      const maxView = t.maxExpAvgSq!;
      const vmax = maxView.storage.data as TypedArray;
      for (let i = 0; i < count; i++) vmax[maxView.offset + i] = Math.max(vmax[maxView.offset + i], v[vo + i]);
      second = maxView;
    }

    const s = second.storage.data as TypedArray;
    const nextX = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      nextX[i] = x[xo + i] * decay - stepSize * (m[mo + i] / (Math.sqrt(s[second.offset + i]) / sqrtBiasCorrection2 + h.eps));
    }
    storeInto(t.param, nextX);
  }
}

/** Writes `values` into a contiguous view, rounded to the view's dtype (the typed array rounds float32). */
function storeInto(view: View, values: Float64Array): void {
  const rounded = view.storage.dtype === 'float16' ? roundToFloat16(values) : values;
  (view.storage.data as TypedArray).set(rounded, view.offset);
}
