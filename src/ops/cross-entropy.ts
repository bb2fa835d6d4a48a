// Cross entropy as one fused op. One forward kernel reads each row of logits once and writes the row's loss
// and logsumexp. One backward kernel turns the saved logsumexp into dx, so no log-softmax tensor is kept.

import { getBackend } from '../runtime.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, mapOp } from './elementwise.js';
import { Reduction, checkFloat, checkIndexDType, checkReduction } from './nn.js';
import { arg, registerOp } from './registry.js';
import { checkDTypeOnDevice, checkIndexRange, commonDevice } from './util.js';

export interface CrossEntropyOptions {
  /** Targets equal to this contribute nothing, and 'mean' divides by the count of the others. */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** Mixes the one-hot target with the uniform distribution by this weight, as in torch. */
  labelSmoothing?: number;
}

/** Returns the permutation that moves dim `from` of a rank-`rank` tensor to the end. */
function moveToEnd(from: number, rank: number): number[] {
  return [...Array(rank).keys()].filter((d) => d !== from).concat(from);
}

/**
 * Cross entropy between logits ([C], [N, C] or [N, C, d1, ...]) and int32 class indices ([], [N] or
 * [N, d1, ...]), as torch.nn.functional.cross_entropy (1.13) with class-index targets. Per row, with
 * lse = log(sum_j exp(x_j)) and label smoothing s:
 *   loss = (1 - s) * (lse - x_target) + s * (lse - mean_j x_j), and 0 where target == ignoreIndex.
 * 'mean' divides the sum by the count of rows that are not ignored. With every row ignored it returns
 * NaN (0 / 0, as torch) but gives zero gradients, so a fully padded batch leaves the parameters unchanged.
 * Saves the logits (a view, never a copy), the targets, one logsumexp per row and, for 'mean', the count.
 */
export function crossEntropy(input: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  checkFloat('crossEntropy', input);
  checkIndexDType('crossEntropy', target, 'target');
  const device = commonDevice('crossEntropy', [input, target]);
  checkDTypeOnDevice('crossEntropy', input.dtype, device);
  const ignoreIndex = options.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex) || ignoreIndex < -(2 ** 31) || ignoreIndex >= 2 ** 31) {
    throw new RangeError(`crossEntropy: ignoreIndex must be an int32 integer, got ${ignoreIndex}`);
  }
  const reduction = checkReduction('crossEntropy', options.reduction ?? 'mean');
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`crossEntropy: labelSmoothing must be between 0 and 1, got ${smoothing}`);
  if (input.shape.length === 0) throw new Error('crossEntropy: input must have a class dim, got a 0-dim tensor');
  const classDim = input.shape.length === 1 ? 0 : 1;
  const expected = input.shape.filter((_, i) => i !== classDim);
  if (target.shape.length !== expected.length || target.shape.some((d, i) => d !== expected[i])) {
    throw new Error(`crossEntropy: target of shape ${formatShape(target.shape)} does not match input ${formatShape(input.shape)}; expected ${formatShape(expected)} of class indices`);
  }
  const classes = input.shape[classDim];
  checkIndexRange('crossEntropy', target, classes, `${classes} classes`, 'target class', ignoreIndex);

  // The kernels take logits as [...rows, C]: a [C] input becomes one row, and [N, C, d1, ...] is permuted
  // (a strided view, not a copy) so that the class dim is last.
  const rank = input.shape.length;
  const order = moveToEnd(classDim, rank);
  const logits = rank === 1 ? input.reshape([1, classes]) : classDim === rank - 1 ? input : input.permute(order);
  const rows = target.numel;
  const flatTarget = target.reshape([rows]);
  const backend = getBackend(device);
  const result = backend.crossEntropy(logits.asView('crossEntropy'), flatTarget.asView('crossEntropy'), ignoreIndex, smoothing);
  const losses = Tensor.fromStorage(result.loss, target.shape);
  const lse = Tensor.fromStorage(result.lse, [rows]);

  let out: Tensor;
  let count: Tensor | null = null;
  if (reduction === 'none') {
    out = losses;
  } else if (reduction === 'sum') {
    out = losses.sum();
    losses.dispose();
  } else {
    const valid = mapOp('crossEntropy', K.ne, [flatTarget, ignoreIndex], { compute: 'int32', out: input.dtype });
    count = valid.sum();
    const total = losses.sum();
    out = mapOp('crossEntropy', K.div, [total, count]);
    for (const t of [valid, total, losses]) t.dispose();
  }

  // dx = g_row * (softmax(x) - (1 - s) * onehot(target) - s / C) on rows that are not ignored, and 0 on the rest.
  // g_row is the output's gradient for the row: 'sum' broadcasts its scalar, and 'mean' divides it by the count first.
  const saved = count ? [logits, flatTarget, lse, count] : [logits, flatTarget, lse];
  Tensor.record('crossEntropy', [input, target], out, (g, [logitsSaved, targetSaved, lseSaved, countSaved]) => {
    let rowGrad: Tensor;
    if (reduction === 'none') {
      rowGrad = g.reshape([rows]);
    } else if (reduction === 'sum') {
      rowGrad = g.expand([rows]);
    } else {
      const safeCount = countSaved.clamp(1);
      const scaled = mapOp('crossEntropy backward', K.div, [g, safeCount]);
      rowGrad = scaled.expand([rows]);
      safeCount.dispose();
      scaled.dispose();
    }
    const dxStorage = backend.crossEntropyBackward(
      rowGrad.asView('crossEntropy backward'), logitsSaved.asView('crossEntropy backward'), targetSaved.asView('crossEntropy backward'),
      lseSaved.asView('crossEntropy backward'), ignoreIndex, smoothing,
    );
    rowGrad.dispose();
    // The kernel writes dx contiguous in the logits' [...rows, C] order; the inverse permutation restores the input's.
    const dxRows = Tensor.fromStorage(dxStorage, logitsSaved.shape);
    if (rank === 2) return [dxRows, null];
    const dx = rank === 1 ? dxRows.reshape([classes]) : dxRows.permute(order.map((_, i) => order.indexOf(i)));
    dxRows.dispose();
    return [dx, null];
  }, saved);

  if (logits !== input) logits.dispose();
  flatTarget.dispose();
  lse.dispose();
  count?.dispose();
  return out;
}

registerOp('crossEntropy', [
  { label: 'mean', args: [arg([6, 5]), arg([6], 'index', { high: 5 })], run: (x, t) => crossEntropy(x, t) },
  { label: 'label smoothing sum', args: [arg([4, 9]), arg([4], 'index', { high: 9 })], run: (x, t) => crossEntropy(x, t, { labelSmoothing: 0.1, reduction: 'sum' }) },
  { label: 'spatial none', args: [arg([2, 4, 3]), arg([2, 3], 'index', { high: 4 })], run: (x, t) => crossEntropy(x, t, { reduction: 'none' }) },
  // Class 5 is the padding id here: about one row in six is ignored.
  { label: 'ignored rows, mean', args: [arg([37, 5]), arg([37], 'index', { high: 6 })], run: (x, t) => crossEntropy(x, t, { ignoreIndex: 5 }) },
  { label: 'every row ignored, sum', args: [arg([3, 4]), arg([3], 'index', { high: 1 })], run: (x, t) => crossEntropy(x, t, { ignoreIndex: 0, reduction: 'sum' }) },
  {
    label: 'label smoothing mean, ignored rows',
    args: [arg([23, 7]), arg([23], 'index', { high: 8 })],
    run: (x, t) => crossEntropy(x, t, { ignoreIndex: 7, labelSmoothing: 0.2 }),
  },
  { label: 'spatial [N, C, d1, d2] mean', args: [arg([2, 5, 3, 2]), arg([2, 3, 2], 'index', { high: 5 })], run: (x, t) => crossEntropy(x, t) },
  { label: 'one sample [C]', args: [arg([7]), arg([], 'index', { high: 7 })], run: (x, t) => crossEntropy(x, t, { labelSmoothing: 0.3 }) },
  { label: 'strided logits', args: [arg([5, 6]), arg([6], 'index', { high: 5 })], run: (x, t) => crossEntropy(x.t(), t, { reduction: 'sum' }) },
  // More classes than a workgroup has invocations: on WebGPU a workgroup shares each of these few rows.
  {
    label: 'more classes than a workgroup',
    args: [arg([3, 301]), arg([3], 'index', { high: 301 })],
    run: (x, t) => crossEntropy(x.mul(3), t, { labelSmoothing: 0.1 }),
  },
  // More rows than a workgroup has invocations: on WebGPU one invocation walks each row.
  { label: 'many rows, odd classes', args: [arg([261, 3]), arg([261], 'index', { high: 4 })], run: (x, t) => crossEntropy(x, t, { ignoreIndex: 3, reduction: 'none' }) },
]);
