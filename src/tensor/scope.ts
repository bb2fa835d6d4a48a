// Scopes that release intermediate tensors: fg.tidy(fn) disposes every tensor created inside `fn`
// except the ones it returns and the ones passed to fg.keep().

import type { Tensor } from './tensor.js';

const scopes: Set<Tensor>[] = [];

/** Adds a new tensor to the innermost open scope. */
export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Removes a tensor from every open scope, so that no tidy() disposes it; returns the tensor. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, isTensor: (v: unknown) => v is Tensor): void {
  if (isTensor(value)) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, isTensor);
  } else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, isTensor);
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except those in its result (a tensor, or arrays and plain
 * objects of them), which move to the enclosing scope. `fn` must be synchronous, as the tape is.
 */
export function tidy<T>(fn: () => T, isTensor: (v: unknown) => v is Tensor): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw error;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new TypeError('tidy: the function returned a Promise; tidy() only takes synchronous functions, so await outside it');
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept, isTensor);
  for (const t of scope) {
    if (kept.has(t)) track(t);
    else t.dispose();
  }
  return result;
}
