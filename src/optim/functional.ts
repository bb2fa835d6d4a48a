// The parameter updates of every optimizer, in one place: each function applies one step to a list of
// parameters with fused elementwise kernels (one dispatch per formula line), on the parameters' device,
// with no readback. A faster multi-parameter kernel can replace these functions without touching the
// optimizer classes.

import type { MapKernel } from '../backends/backend.js';
import { getBackend } from '../runtime.js';
import { keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { K, mapOp } from '../ops/elementwise.js';
import type { SgdOptions } from './sgd.js';

function kernel(name: string, arity: number, wgsl: string, js: MapKernel['js']): MapKernel {
  return { name, arity, wgsl, js };
}

/**
 * The update kernels. Inputs are a, b, c; p0..p3 are scalar parameters. The L2 term `b + p2 * c` is
 * the gradient plus weightDecay times the parameter, as torch.optim.Adam adds it before the moments.
 */
const U = {
  // m = beta1 * m + (1 - beta1) * (g + wd * x)
  adamExpAvg: kernel('adamExpAvg', 3, 'p0 * a + p1 * (b + p2 * c)', (m, g, x, p) => p[0] * m + p[1] * (g + p[2] * x)),
  // v = beta2 * v + (1 - beta2) * (g + wd * x)^2
  adamExpAvgSq: kernel('adamExpAvgSq', 3, 'p0 * a + p1 * ((b + p2 * c) * (b + p2 * c))',
    (v, g, x, p) => p[0] * v + p[1] * ((g + p[2] * x) * (g + p[2] * x))),
  // x = x * decay - stepSize * m / (sqrt(v) / sqrt(biasCorrection2) + eps)
  adamParam: kernel('adamParam', 3, 'a * p3 - p0 * (b / (sqrt(c) / p1 + p2))',
    (x, m, v, p) => x * p[3] - p[0] * (m / (Math.sqrt(v) / p[1] + p[2]))),
  // buf = momentum * buf + (1 - dampening) * d
  linearCombination: kernel('linearCombination', 2, 'p0 * a + p1 * b', (a, b, _c, p) => p[0] * a + p[1] * b),
  // x = x - lr * (d + momentum * buf), the Nesterov step
  sgdNesterovParam: kernel('sgdNesterovParam', 3, 'a - p0 * (b + p1 * c)', (x, d, buf, p) => x - p[0] * (d + p[1] * buf)),
};

/** Runs `k` over the operands and writes the result into `target`'s storage, in place. */
function writeInPlace(target: Tensor, k: MapKernel, operands: readonly (Tensor | number)[], params: number[]): void {
  const inputs = operands.map((v) => (v instanceof Tensor ? v.asView(k.name) : v));
  getBackend(target.device).map(k, inputs, target.dtype, target.asView(k.name), params);
  target.bumpVersion();
}

/** Runs `k` into a new tensor that outlives every tidy() scope (optimizer state), and releases `previous`. */
function replaceState(previous: Tensor | null, k: MapKernel, operands: readonly (Tensor | number)[], params: number[], dtype: Tensor['dtype']): Tensor {
  const out = keep(mapOp(k.name, k, operands, { params, compute: dtype }));
  previous?.dispose();
  return out;
}

/** SGD's hyperparameters, the same fields as the optimizer's options. */
export type SgdHyper = SgdOptions;

export interface SgdSlot {
  param: Tensor;
  grad: Tensor;
  /** The momentum buffer, null before the first step with momentum. */
  momentumBuffer: Tensor | null;
}

/**
 * Applies one SGD step, as torch.optim.SGD (1.13) does: d = g + wd * x; with momentum, buf = clone(d) at the first
 * step and momentum * buf + (1 - dampening) * d afterwards; d = d + momentum * buf (Nesterov) or buf;
 * x = x - lr * d. Updates each slot's momentumBuffer.
 */
export function sgdUpdate(slots: SgdSlot[], h: SgdHyper): void {
  for (const slot of slots) {
    const { param } = slot;
    let d = h.maximize ? mapOp('sgd', K.neg, [slot.grad]) : slot.grad;
    if (h.weightDecay !== 0) d = swap(d, slot.grad, mapOp('sgd', K.addScaled, [d, param], { params: [h.weightDecay] }));

    if (h.momentum === 0) {
      writeInPlace(param, K.addScaled, [param, d], [-h.lr]);
    } else {
      slot.momentumBuffer = slot.momentumBuffer === null
        ? replaceState(null, K.identity, [d], [], param.dtype)
        : replaceState(slot.momentumBuffer, U.linearCombination, [slot.momentumBuffer, d], [h.momentum, 1 - h.dampening], param.dtype);
      if (h.nesterov) writeInPlace(param, U.sgdNesterovParam, [param, d, slot.momentumBuffer], [h.lr, h.momentum]);
      else writeInPlace(param, K.addScaled, [param, slot.momentumBuffer], [-h.lr]);
    }

    if (d !== slot.grad) d.dispose();
  }
}

/** Returns `next`, releasing `current` unless it is the caller's gradient. */
function swap(current: Tensor, grad: Tensor, next: Tensor): Tensor {
  if (current !== grad) current.dispose();
  return next;
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** True for AdamW: decay the parameter by lr * weightDecay instead of adding weightDecay * x to the gradient. */
  decoupled: boolean;
  amsgrad: boolean;
  maximize: boolean;
}

export interface AdamSlot {
  param: Tensor;
  grad: Tensor;
  /** Steps taken so far, including the one being applied. */
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** The running maximum of expAvgSq (amsgrad only). */
  maxExpAvgSq: Tensor | null;
}

/**
 * Applies one Adam or AdamW step, as torch.optim.Adam and AdamW (1.13, single-tensor path) do:
 * m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  x = x - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
 * where Adam adds wd * x to g and AdamW first scales x by 1 - lr * wd. Replaces each slot's moment tensors.
 */
export function adamUpdate(slots: AdamSlot[], h: AdamHyper): void {
  const l2 = h.decoupled ? 0 : h.weightDecay;
  const decay = h.decoupled ? 1 - h.lr * h.weightDecay : 1;
  for (const slot of slots) {
    const { param } = slot;
    const grad = h.maximize ? mapOp('adam', K.neg, [slot.grad]) : slot.grad;
    slot.expAvg = replaceState(slot.expAvg, U.adamExpAvg, [slot.expAvg, grad, param], [h.beta1, 1 - h.beta1, l2], param.dtype);
    slot.expAvgSq = replaceState(slot.expAvgSq, U.adamExpAvgSq, [slot.expAvgSq, grad, param], [h.beta2, 1 - h.beta2, l2], param.dtype);
    if (grad !== slot.grad) grad.dispose();

    let second = slot.expAvgSq;
    if (h.amsgrad) {
      slot.maxExpAvgSq = replaceState(slot.maxExpAvgSq, K.maximum, [slot.maxExpAvgSq ?? slot.expAvgSq, slot.expAvgSq], [], param.dtype);
      second = slot.maxExpAvgSq;
    }

    const biasCorrection1 = 1 - h.beta1 ** slot.step;
    const biasCorrection2 = 1 - h.beta2 ** slot.step;
    const stepSize = h.lr / biasCorrection1;
    writeInPlace(param, U.adamParam, [param, slot.expAvg, second], [stepSize, Math.sqrt(biasCorrection2), h.eps, decay]);
  }
}
