// fg.nn.utils: gradient clipping and the mapping between torch's parameter names and fusegrad's.

import { noGrad } from '../runtime.js';
import { full } from '../ops/creation.js';
import { div } from '../ops/elementwise.js';
import { stack } from '../ops/shape.js';
import { Tensor } from '../tensor/tensor.js';

function gradsOf(op: string, parameters: Tensor | Iterable<Tensor>): Tensor[] {
  const list = parameters instanceof Tensor ? [parameters] : [...parameters];
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`${op}: parameter ${i} is not a Tensor`);
  });
  const grads = list.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  for (const g of grads) {
    if (g.device !== grads[0].device) {
      throw new Error(`${op}: gradients live on '${grads[0].device}' and '${g.device}'; move the parameters to one device`);
    }
  }
  return grads;
}

/**
 * Scales the gradients of `parameters` in place so that their total norm (the p-norm of all gradients
 * together, p = normType, Infinity for the largest absolute value) is at most maxNorm, as
 * torch.nn.utils.clip_grad_norm_: each gradient is multiplied by min(1, maxNorm / (total + 1e-6)).
 * Parameters without a gradient are skipped. Returns the total norm before clipping as a 0-dim tensor.
 * Everything stays on the gradients' device, so nothing is read back unless the caller reads the result.
 */
export function clipGradNorm(parameters: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  const op = 'clipGradNorm';
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm)) throw new TypeError(`${op}: maxNorm must be a number, got ${maxNorm}`);
  if (typeof normType !== 'number' || Number.isNaN(normType) || normType <= 0) {
    throw new RangeError(`${op}: normType must be a positive number or Infinity, got ${normType}`);
  }
  const grads = gradsOf(op, parameters);
  if (grads.length === 0) return full([], 0);

  return noGrad(() => {
    const norms = grads.map((g) => tensorNorm(g, normType));
    const all = stack(norms);
    norms.forEach((t) => t.dispose());
    const total = tensorNorm(all, normType);
    all.dispose();
    const denominator = total.add(1e-6);
    const ratio = div(maxNorm, denominator);
    const coefficient = ratio.clamp(null, 1);
    for (const t of [denominator, ratio]) t.dispose();
    for (const g of grads) g.mul_(coefficient);
    coefficient.dispose();
    return total;
  });
}

/** torch's trailing-underscore name for clipGradNorm, which also clips in place. */
export const clipGradNorm_ = clipGradNorm;

/** Computes the p-norm of all elements of t as a 0-dim tensor. */
function tensorNorm(t: Tensor, p: number): Tensor {
  if (p === 2) {
    const squares = t.mul(t);
    const sum = squares.sum();
    const out = sum.sqrt();
    squares.dispose();
    sum.dispose();
    return out;
  }
  const magnitude = t.abs();
  let out: Tensor;
  if (p === Infinity) {
    out = magnitude.amax();
  } else {
    const powers = magnitude.pow(p);
    const sum = powers.sum();
    out = sum.pow(1 / p);
    powers.dispose();
    sum.dispose();
  }
  magnitude.dispose();
  return out;
}

/** Clamps every gradient of `parameters` to [-clipValue, clipValue] in place, as torch.nn.utils.clip_grad_value_. */
export function clipGradValue(parameters: Tensor | Iterable<Tensor>, clipValue: number): void {
  if (typeof clipValue !== 'number' || !(clipValue >= 0)) throw new RangeError(`clipGradValue: clipValue must be a number >= 0, got ${clipValue}`);
  const grads = gradsOf('clipGradValue', parameters);
  noGrad(() => {
    for (const g of grads) g.clamp_(-clipValue, clipValue);
  });
}

export const clipGradValue_ = clipGradValue;

const LAYER_SUFFIX = /(_l\d+(?:_reverse)?)$/;

/**
 * Converts a torch state-dict key to fusegrad's: each dotted segment in camelCase, keeping the `_l{k}`
 * layer suffix of recurrent layers (`weight_ih_l0` -> `weightIh_l0`, `out_proj.weight` -> `outProj.weight`).
 * Only an underscore before a letter is removed, so `ln_1` stays `ln_1` and toTorchName inverts the mapping.
 */
export function fromTorchName(name: string): string {
  return name.split('.').map((segment) => {
    const suffix = LAYER_SUFFIX.exec(segment)?.[1] ?? '';
    const base = segment.slice(0, segment.length - suffix.length);
    return base.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) + suffix;
  }).join('.');
}

/** Converts a fusegrad parameter name to torch's snake_case key; the inverse of fromTorchName. */
export function toTorchName(name: string): string {
  return name.split('.').map((segment) => {
    const suffix = LAYER_SUFFIX.exec(segment)?.[1] ?? '';
    const base = segment.slice(0, segment.length - suffix.length);
    return base.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) + suffix;
  }).join('.');
}
