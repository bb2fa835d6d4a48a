// The parameter updates of every optimizer, in one place: each function applies one step to a list of
// parameters on the parameters' device, with no readback. SGD runs fused elementwise kernels (one
// dispatch per formula line); Adam runs the backend's adamStep, which updates many parameters per dispatch.

import type { AdamStepOptions, AdamStepTarget, DeviceName, MapKernel } from '../backends/backend.js';
import { zerosLike } from '../ops/creation.js';
import { getBackend } from '../runtime.js';
import { keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { K, mapOp } from '../ops/elementwise.js';
import type { SgdOptions } from './sgd.js';

function kernel(name: string, arity: number, wgsl: string, js: MapKernel['js']): MapKernel {
  return { name, arity, wgsl, js };
}

/** SGD's update kernels. Inputs are a, b, c; p0..p3 are scalar parameters. */
const U = {
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

/** Adam's hyperparameters: the fields of Backend.adamStep's options. */
export type AdamHyper = AdamStepOptions;

export interface AdamSlot {
  param: Tensor;
  grad: Tensor;
  /** Steps taken so far, including the one being applied. */
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** The running maximum of expAvgSq (amsgrad only); created at the first amsgrad step. */
  maxExpAvgSq: Tensor | null;
}

/**
 * Applies one Adam or AdamW step, as torch.optim.Adam and AdamW (1.13, single-tensor path) do:
 * m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  x = x - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
 * where Adam adds wd * x to g and AdamW first scales x by 1 - lr * wd. One Backend.adamStep call per device
 * updates the parameters and the moment tensors in place, so a step allocates nothing once the state exists.
 * NOTE: float16 parameters keep float16 moments, as torch does. A squared gradient below about 6e-8 is stored
 * as 0, so that element's step becomes m / eps, and WebGPU may round such tiny values differently from the CPU.
 */
export function adamUpdate(slots: AdamSlot[], h: AdamHyper): void {
  const op = h.decoupled ? 'AdamW.step' : 'Adam.step';
  const temporaries: Tensor[] = [];
  const copyBacks: [Tensor, Tensor][] = [];
  const byDevice = new Map<DeviceName, AdamStepTarget[]>();
  for (const slot of slots) {
    const { param } = slot;
    slot.expAvg = ownState(op, slot.expAvg, param, []);
    slot.expAvgSq = ownState(op, slot.expAvgSq, param, [slot.expAvg]);
    if (h.amsgrad) slot.maxExpAvgSq = ownState(op, slot.maxExpAvgSq ?? keep(zerosLike(param)), param, [slot.expAvg, slot.expAvgSq]);

    // The kernels need contiguous views: a strided parameter is updated through a copy and written back.
    let work = param;
    if (!param.isContiguous()) {
      work = contiguousCopy(param, param.dtype);
      temporaries.push(work);
      copyBacks.push([param, work]);
    }
    const states = [slot.expAvg, slot.expAvgSq, ...(h.amsgrad ? [slot.maxExpAvgSq!] : [])];
    let grad = slot.grad;
    if (!grad.isContiguous() || grad.dtype !== param.dtype || [work, ...states].some((t) => t.sharesStorage(grad))) {
      grad = contiguousCopy(grad, param.dtype);
      temporaries.push(grad);
    }

    const target: AdamStepTarget = {
      param: work.asView('adam'),
      grad: grad.asView('adam'),
      expAvg: slot.expAvg.asView('adam'),
      expAvgSq: slot.expAvgSq.asView('adam'),
      maxExpAvgSq: h.amsgrad ? slot.maxExpAvgSq!.asView('adam') : null,
      step: slot.step,
    };
    const list = byDevice.get(param.device) ?? [];
    list.push(target);
    byDevice.set(param.device, list);
  }

  for (const [device, targets] of byDevice) getBackend(device).adamStep(targets, h);
  for (const [param, work] of copyBacks) writeInPlace(param, K.identity, [work], []);
  for (const slot of slots) {
    slot.param.bumpVersion();
    slot.expAvg.bumpVersion();
    slot.expAvgSq.bumpVersion();
    if (h.amsgrad) slot.maxExpAvgSq!.bumpVersion();
  }
  for (const t of temporaries) t.dispose();
}

/** Returns a contiguous copy of `t` in `dtype`, cut off from the graph. */
function contiguousCopy(t: Tensor, dtype: Tensor['dtype']): Tensor {
  return mapOp('adam', K.identity, [t], { compute: dtype });
}

/**
 * Returns `state` when the kernels can update it in place: contiguous, in the parameter's dtype, and
 * in a storage that neither the parameter nor `others` use. Otherwise it returns such a
 * copy, kept outside every tidy() scope, and releases `state`.
 */
function ownState(op: string, state: Tensor, param: Tensor, others: Tensor[]): Tensor {
  if (state.device !== param.device) {
    throw new Error(`${op}: a state tensor is on '${state.device}' but its parameter is on '${param.device}'; restore state with loadStateDict(), which moves it`);
  }
  const usable = state.isContiguous() && state.dtype === param.dtype && state.numel === param.numel &&
    !state.sharesStorage(param) && !others.some((t) => t.sharesStorage(state));
  if (usable) return state;
  const copy = keep(contiguousCopy(state, param.dtype));
  state.dispose();
  return copy;
}
