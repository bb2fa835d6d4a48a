// Helpers that both backends use in Backend.adamStep: the check of its targets, and the scalars derived
// from the hyperparameters and a parameter's step count.

import type { AdamStepOptions, AdamStepTarget, View } from './backend.js';
import { formatShape, isContiguous, numel } from '../tensor/shape.js';

/** The per-step scalars of the update x = x * decay - stepSize * m / (sqrt(v) / sqrtBiasCorrection2 + eps). */
export interface AdamScalars {
  /** lr / (1 - beta1^t). */
  stepSize: number;
  /** sqrt(1 - beta2^t). */
  sqrtBiasCorrection2: number;
  /** The L2 term added to the gradient: weightDecay for Adam, 0 for AdamW. */
  l2: number;
  /** The factor on the parameter: 1 - lr * weightDecay for AdamW, 1 for Adam. */
  decay: number;
}

export function adamScalars(step: number, h: AdamStepOptions): AdamScalars {
  return {
    stepSize: h.lr / (1 - h.beta1 ** step),
    sqrtBiasCorrection2: Math.sqrt(1 - h.beta2 ** step),
    l2: h.decoupled ? 0 : h.weightDecay,
    decay: h.decoupled ? 1 - h.lr * h.weightDecay : 1,
  };
}

/** Throws unless every target meets the contract of Backend.adamStep. */
export function checkAdamTargets(targets: readonly AdamStepTarget[], h: AdamStepOptions): void {
  targets.forEach((t, k) => {
    const where = `adamStep: parameter ${k} (shape ${formatShape(t.param.shape)})`;
    const count = numel(t.param.shape);
    const views: [string, View | null][] = [['param', t.param], ['grad', t.grad], ['expAvg', t.expAvg], ['expAvgSq', t.expAvgSq], ['maxExpAvgSq', t.maxExpAvgSq]];
    for (const [name, view] of views) {
      if (view === null) continue;
      if (numel(view.shape) !== count) throw new Error(`${where}: ${name} has ${numel(view.shape)} elements, expected ${count}`);
      if (!isContiguous(view.shape, view.strides)) throw new Error(`${where}: ${name} must be contiguous; make a contiguous copy first`);
      if (view.storage.dtype !== t.param.storage.dtype) {
        throw new Error(`${where}: ${name} is ${view.storage.dtype} but the parameter is ${t.param.storage.dtype}; convert it to the parameter's dtype`);
      }
    }
    if (h.amsgrad && t.maxExpAvgSq === null) throw new Error(`${where}: amsgrad needs maxExpAvgSq (zeros before the first step)`);
    if (!Number.isInteger(t.step) || t.step < 1) throw new RangeError(`${where}: step must be a positive integer, got ${t.step}`);
    const written = [t.param, t.expAvg, t.expAvgSq, ...(h.amsgrad && t.maxExpAvgSq ? [t.maxExpAvgSq] : [])].map((v) => v.storage);
    if (new Set(written).size !== written.length || written.includes(t.grad.storage)) {
      throw new Error(`${where}: param, grad, expAvg, expAvgSq and maxExpAvgSq must not share a storage; clone the shared one`);
    }
  });
}
