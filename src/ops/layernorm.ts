// LayerNorm as one fused op: one forward kernel computes each row's mean and rstd and writes y, and one
// backward kernel turns the saved statistics into dx, dweight and dbias without recomputing them.

import { getBackend } from '../runtime.js';
import { isFloating } from '../tensor/dtype.js';
import { formatShape, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { arg, registerOp } from './registry.js';
import { contiguous } from './shape.js';
import { checkDTypeOnDevice, checkTensor } from './util.js';

/** Returns normalizedShape as a list, or throws naming the value and what is expected. */
function checkNormalizedShape(normalizedShape: unknown): number[] {
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new TypeError(
      `layerNorm: normalizedShape must be a positive integer or a non-empty array of positive integers (the trailing dims to normalize over), got ${JSON.stringify(normalizedShape)}`,
    );
  }
  return [...shape];
}

/** Checks that weight or bias is a tensor of exactly normalizedShape, on x's device and in x's dtype. */
function checkAffine(name: 'weight' | 'bias', value: Tensor | null | undefined, x: Tensor, shape: number[]): Tensor | null {
  if (value === null || value === undefined) return null;
  checkTensor('layerNorm', value, name);
  if (value.shape.length !== shape.length || value.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`layerNorm: ${name} has shape ${formatShape(value.shape)}, but normalizedShape is ${formatShape(shape)}; ${name} must have exactly that shape`);
  }
  if (value.dtype !== x.dtype) {
    throw new TypeError(`layerNorm: ${name} is ${value.dtype} but the input is ${x.dtype}; convert it with ${name}.to('${x.dtype}')`);
  }
  if (value.device !== x.device) {
    throw new Error(`layerNorm: ${name} is on '${value.device}' but the input is on '${x.device}'; move it with await ${name}.toDevice('${x.device}')`);
  }
  return value;
}

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing dims given by normalizedShape, with the
 * biased variance, as torch.nn.functional.layer_norm. weight and bias are optional and have normalizedShape.
 * Saves x, weight, mean and rstd for backward: the input and weight plus two floats per row. The mean is
 * kept as mean - x[row, 0], which stays precise in float32 where a row's offset dwarfs its spread.
 */
export function layerNorm(
  x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5,
): Tensor {
  checkTensor('layerNorm', x);
  if (!isFloating(x.dtype)) throw new TypeError(`layerNorm: expects a floating-point input, got ${x.dtype}; convert it with x.to('float32')`);
  checkDTypeOnDevice('layerNorm', x.dtype, x.device);
  const shape = checkNormalizedShape(normalizedShape);
  const trailing = x.shape.slice(x.shape.length - shape.length);
  if (x.shape.length < shape.length || trailing.some((d, i) => d !== shape[i])) {
    throw new Error(
      `layerNorm: normalizedShape ${formatShape(shape)} must match the trailing dims of the input, but the input has shape ${formatShape(x.shape)}; ` +
        `pass normalizedShape ${formatShape(x.shape.slice(-shape.length))} or reshape the input`,
    );
  }
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`layerNorm: eps must be a finite number >= 0, got ${eps}`);
  }
  const w = checkAffine('weight', weight, x, shape);
  const b = checkAffine('bias', bias, x, shape);

  // The kernels read contiguous rows, so a strided operand is copied first and differentiated through the copy.
  const input = x.isContiguous() ? x : contiguous(x);
  const wIn = w && !w.isContiguous() ? contiguous(w) : w;
  const bIn = b && !b.isContiguous() ? contiguous(b) : b;
  const width = numel(shape);
  const rows = x.numel / width;
  const backend = getBackend(x.device);
  const result = backend.layerNorm(input.asView('layerNorm'), width, wIn?.asView('layerNorm') ?? null, bIn?.asView('layerNorm') ?? null, eps);
  const out = Tensor.fromStorage(result.out, x.shape);
  const shiftedMean = Tensor.fromStorage(result.shiftedMean, [rows]);
  const rstd = Tensor.fromStorage(result.rstd, [rows]);
  const saved = wIn ? [input, wIn, shiftedMean, rstd] : [input, shiftedMean, rstd];
  const withBias = bIn !== null;

  // dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)), dweight = sum over rows of g * xhat, dbias = sum of g.
  Tensor.record('layerNorm', [input, wIn, bIn], out, (g, savedTensors) => {
    const [xSaved, wSaved, meanSaved, rstdSaved] = wIn ? savedTensors : [savedTensors[0], null, savedTensors[1], savedTensors[2]];
    const gIn = g.isContiguous() ? g : g.contiguous();
    const grads = backend.layerNormBackward(
      gIn.asView('layerNorm backward'), xSaved.asView('layerNorm backward'), width, wSaved?.asView('layerNorm backward') ?? null,
      meanSaved.asView('layerNorm backward'), rstdSaved.asView('layerNorm backward'), withBias,
    );
    if (gIn !== g) gIn.dispose();
    return [
      Tensor.fromStorage(grads.dx, xSaved.shape),
      grads.dweight && Tensor.fromStorage(grads.dweight, shape),
      grads.dbias && Tensor.fromStorage(grads.dbias, shape),
    ];
  }, saved);

  shiftedMean.dispose();
  rstd.dispose();
  if (input !== x) input.dispose();
  if (wIn !== w) wIn?.dispose();
  if (bIn !== b) bIn?.dispose();
  return out;
}

registerOp('layerNorm', [
  { label: 'affine', args: [arg([3, 7]), arg([7]), arg([7])], run: (x, w, b) => layerNorm(x, 7, w, b) },
  { label: 'two trailing dims', args: [arg([2, 3, 4]), arg([3, 4]), arg([3, 4])], run: (x, w, b) => layerNorm(x, [3, 4], w, b) },
  { label: 'weight only, vec4 rows', args: [arg([5, 16]), arg([16])], run: (x, w) => layerNorm(x, 16, w) },
  { label: 'no affine, wide rows', args: [arg([3, 600])], run: (x) => layerNorm(x, 600) },
  { label: 'more rows than a workgroup', args: [arg([300, 3]), arg([3]), arg([3])], run: (x, w, b) => layerNorm(x, [3], w, b, 1e-3) },
  { label: 'strided input', args: [arg([6, 5]), arg([6])], run: (x, w) => layerNorm(x.t(), 6, null, w) },
]);
