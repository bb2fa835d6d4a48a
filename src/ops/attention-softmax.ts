// Attention's softmax as one fused op: scale, causal and padding masks and the softmax in one kernel, and a
// backward of one kernel that plain softmax and logSoftmax share.

import { getBackend } from '../runtime.js';
import { isFloating } from '../tensor/dtype.js';
import { broadcastShapes, formatShape, normalizeDim, sameShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { zeros } from './creation.js';
import { K, mapOp } from './elementwise.js';
import { arg, registerOp } from './registry.js';
import { cat } from './shape.js';
import { broadcastView, checkDTypeOnDevice, checkTensor, sumTo } from './util.js';

export interface ScaledMaskedSoftmaxOptions {
  /** Multiplies the scores before the masks are applied, for example 1 / sqrt(headDim) (default 1). */
  scale?: number;
  /** Masks column j > row i, with i the index along the second-to-last dim: no key after the query (default false). */
  causal?: boolean;
  /**
   * A mask or a list of at most two (for example attnMask and keyPaddingMask), each broadcastable to the
   * scores' shape: bool, where true sets the score to -inf, or floating point, added to the scaled scores.
   */
  mask?: Tensor | null | readonly (Tensor | null | undefined)[];
}

const OP = 'scaledMaskedSoftmax';
const MAX_MASKS = 2;

/** Checks each mask's dtype, device and shape against the scores, and returns the masks given as a list. */
function checkMasks(scores: Tensor, mask: ScaledMaskedSoftmaxOptions['mask']): Tensor[] {
  const given = mask instanceof Tensor ? [mask] : [...(mask ?? [])];
  const list = given.filter((m): m is Tensor => m !== null && m !== undefined);
  if (list.length > MAX_MASKS) {
    throw new RangeError(`${OP}: takes at most ${MAX_MASKS} masks, got ${list.length}; add float masks together or combine bool masks with logicalOr first`);
  }
  return list.map((m, k) => {
    const name = list.length > 1 ? `mask ${k}` : 'mask';
    checkTensor(OP, m, name);
    if (m.dtype !== 'bool' && !isFloating(m.dtype)) {
      throw new TypeError(`${OP}: ${name} must be bool (true = masked) or floating point (added to the scores), got ${m.dtype}`);
    }
    checkDTypeOnDevice(OP, m.dtype, m.device);
    if (m.device !== scores.device) {
      throw new Error(`${OP}: ${name} is on '${m.device}' but the scores are on '${scores.device}'; move it with await mask.toDevice('${scores.device}')`);
    }
    let fits = m.shape.length <= scores.shape.length;
    if (fits) {
      try {
        fits = sameShape(broadcastShapes(OP, scores.shape, m.shape), scores.shape);
      } catch {
        fits = false;
      }
    }
    if (!fits) {
      throw new Error(`${OP}: ${name} of shape ${formatShape(m.shape)} does not broadcast to the scores' shape ${formatShape(scores.shape)}; reshape it, for example a key padding mask [N, S] to [N, 1, 1, S]`);
    }
    return m;
  });
}

/**
 * softmax(scale * scores + masks) along the last dim in one kernel, for attention: the causal mask comes from
 * the row and column indices, and masks broadcast by strides, so no [N, h, L, S] mask tensor is built.
 * A row whose entries are all masked gives NaN, as torch 1.13 does. Saves only the output y for backward.
 */
export function scaledMaskedSoftmax(scores: Tensor, options: ScaledMaskedSoftmaxOptions = {}): Tensor {
  checkTensor(OP, scores, 'scores');
  if (!isFloating(scores.dtype)) throw new TypeError(`${OP}: expects floating-point scores, got ${scores.dtype}; convert them with scores.to('float32')`);
  checkDTypeOnDevice(OP, scores.dtype, scores.device);
  if (scores.shape.length === 0) throw new Error(`${OP}: scores must have at least one dim (the softmax runs over the last), got a scalar`);
  const scale = options.scale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`${OP}: scale must be a finite number, got ${scale}`);
  const causal = options.causal ?? false;
  if (typeof causal !== 'boolean') throw new TypeError(`${OP}: causal must be true or false, got ${JSON.stringify(causal)}`);
  if (causal && scores.shape.length < 2) {
    throw new Error(`${OP}: the causal mask needs scores of at least 2 dims [..., queries, keys], got shape ${formatShape(scores.shape)}`);
  }
  const masks = checkMasks(scores, options.mask);

  const backend = getBackend(scores.device);
  const views = masks.map((m) => broadcastView(OP, m, scores.shape));
  const y = Tensor.fromStorage(backend.scaledMaskedSoftmax(scores.asView(OP), { scale, causal, masks: views }), scores.shape);

  // dz = y * (g - sum(g * y)) for z = scale * scores + masks, so d scores = scale * dz and a float mask gets dz summed
  // over its broadcast dims. Without a mask gradient the kernel applies the scale itself.
  const maskGrads = masks.map((m) => m.requiresGrad && isFloating(m.dtype));
  return Tensor.record(OP, [scores, ...masks], y, (g, [out]) => {
    if (!maskGrads.some(Boolean)) return [softmaxGrad(out, g, -1, scale, false), ...masks.map(() => null)];
    const dz = softmaxGrad(out, g, -1, 1, false);
    const dScores = mapOp(OP, K.mul, [dz, scale]);
    const dMasks = masks.map((m, k) => (maskGrads[k] ? sumTo(dz, m.shape) : null));
    dz.dispose();
    return [dScores, ...dMasks];
  }, [y]);
}

/**
 * Computes the gradient of a softmax along `dim` from its output y in one kernel: scale * y * (g - sum(g * y)), or
 * g - exp(y) * sum(g) when y came from logSoftmax (`log`, where scale is unused). Returns a new tensor.
 */
export function softmaxGrad(y: Tensor, g: Tensor, dim: number, scale: number, log: boolean): Tensor {
  if (y.shape.length === 0) {
    const y1 = y.reshape([1]);
    const g1 = g.reshape([1]);
    const dx1 = softmaxGrad(y1, g1, 0, scale, log);
    const dx = dx1.reshape([]);
    for (const t of [y1, g1, dx1]) t.dispose();
    return dx;
  }
  const d = normalizeDim(OP, dim, y.shape.length);
  const last = y.shape.length - 1;
  const yMoved = y.transpose(d, last);
  const gMoved = g.transpose(d, last);
  const storage = getBackend(y.device).softmaxBackward(yMoved.asView('softmax backward'), gMoved.asView('softmax backward'), scale, log);
  const computed = Tensor.fromStorage(storage, yMoved.shape);
  const dx = computed.transpose(d, last);
  for (const t of [yMoved, gMoved, computed]) t.dispose();
  return dx;
}

const bool = (shape: number[]) => arg(shape, 'bool');
const noGrad = (shape: number[]) => arg(shape, 'normal', { grad: false });

/** Puts a false (kept) column in front of a random bool mask, so that no row is fully masked and NaN. */
function keepFirstKey(mask: Tensor): Tensor {
  const kept = zeros([...mask.shape.slice(0, -1), 1], { dtype: 'bool', device: mask.device });
  const out = cat([kept, mask], -1);
  kept.dispose();
  return out;
}

registerOp(OP, [
  { label: 'scale only', args: [arg([3, 7])], run: (x) => scaledMaskedSoftmax(x, { scale: 0.37 }) },
  { label: 'causal, odd sizes', args: [arg([2, 3, 5, 7])], run: (x) => scaledMaskedSoftmax(x, { causal: true, scale: 1.3 }) },
  { label: 'causal, more queries than keys', args: [arg([5, 3])], run: (x) => scaledMaskedSoftmax(x, { causal: true }) },
  { label: 'bool mask per query', args: [arg([2, 3, 4, 6]), bool([4, 5])], run: (x, m) => scaledMaskedSoftmax(x, { mask: keepFirstKey(m) }) },
  { label: 'float mask, broadcast per batch', args: [arg([2, 3, 4, 5]), arg([2, 1, 1, 5])], run: (x, m) => scaledMaskedSoftmax(x, { mask: m, scale: 0.5 }) },
  {
    label: 'causal, float and bool masks',
    args: [arg([2, 2, 5, 5]), noGrad([5, 5]), bool([2, 1, 1, 4])],
    run: (x, attn, keyPadding) => scaledMaskedSoftmax(x, { causal: true, scale: 0.8, mask: [attn, keepFirstKey(keyPadding)] }),
  },
  { label: 'rows wider than a workgroup', args: [arg([3, 600]), arg([600])], run: (x, m) => scaledMaskedSoftmax(x, { mask: m, scale: 2 }) },
  { label: 'many rows, causal', args: [arg([4, 67, 9])], run: (x) => scaledMaskedSoftmax(x, { causal: true, scale: -0.7 }) },
  { label: 'many rows, bool mask', args: [arg([300, 5]), bool([300, 4])], run: (x, m) => scaledMaskedSoftmax(x, { mask: keepFirstKey(m), scale: 1.5 }) },
  { label: 'strided scores', args: [arg([6, 5])], run: (x) => scaledMaskedSoftmax(x.t(), { causal: true }) },
]);
