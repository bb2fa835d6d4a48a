// linear as one op: y = act(x W^T + b), with the bias and the activation applied by matmul's kernel as it
// stores each output, so neither costs a dispatch or a pass over the output of its own.

import type { MatmulActivation } from '../backends/backend.js';
import { getBackend } from '../runtime.js';
import { isFloating } from '../tensor/dtype.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { K, mapOp } from './elementwise.js';
import { arg, registerOp } from './registry.js';
import { checkTensor, commonDevice } from './util.js';

/** The activation that linear applies after the bias: none, or GELU in its exact or tanh form. */
export type LinearActivation = 'none' | MatmulActivation;

const ACTIVATION_BACKWARD = { gelu: K.geluBackward, geluTanh: K.geluTanhBackward };

/**
 * y = x W^T + b over the last dim of x, as torch.nn.functional.linear, then `activation` (gelu(linear(x, W, b))
 * with the same numbers in one kernel). x is [..., inFeatures], weight [outFeatures, inFeatures], bias
 * [outFeatures] or null. Leading dims are flattened into one, so the weight's gradient is one matmul.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null, activation: LinearActivation = 'none'): Tensor {
  const op = activation === 'none' ? 'linear' : `linear with ${activation}`;
  checkTensor(op, x);
  checkTensor(op, weight, 'weight');
  if (bias !== null) checkTensor(op, bias, 'bias');
  const device = commonDevice(op, [x, weight, bias]);
  if (!(activation === 'none' || activation in ACTIVATION_BACKWARD)) {
    throw new TypeError(`${op}: activation must be 'none', 'gelu' or 'geluTanh', got ${JSON.stringify(activation)}`);
  }
  if (weight.shape.length !== 2) throw new Error(`${op}: weight must be 2-D [outFeatures, inFeatures], got shape ${formatShape(weight.shape)}`);
  const [outFeatures, inFeatures] = weight.shape;
  if (x.shape.length === 0 || x.shape[x.shape.length - 1] !== inFeatures) {
    throw new Error(`${op}: input of shape ${formatShape(x.shape)} does not end in inFeatures ${inFeatures} (weight shape ${formatShape(weight.shape)})`);
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== outFeatures)) {
    throw new Error(`${op}: bias must have shape [${outFeatures}], got ${formatShape(bias.shape)}`);
  }
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t && t.dtype !== x.dtype) throw new TypeError(`${op}: input is ${x.dtype} but ${name} is ${t.dtype}; convert one so both match`);
  }
  if (!isFloating(x.dtype)) throw new TypeError(`${op}: dtype ${x.dtype} is not supported; convert to float32`);

  const outShape = [...x.shape.slice(0, -1), outFeatures];
  const rows = x.reshape([-1, inFeatures]);
  const m = rows.shape[0];
  const backend = getBackend(device);
  const wt = weight.t();
  const pre = activation === 'none' ? null : Tensor.fromStorage(backend.allocate(x.dtype, m * outFeatures), [m, outFeatures]);
  const storage = backend.matmul(rows.asView(op), wt.asView(op), {
    bias: bias?.asView(op),
    activation: activation === 'none' ? undefined : activation,
    preActivation: pre?.asView(op).storage,
  });
  wt.dispose();
  const y = Tensor.fromStorage(storage, [m, outFeatures]);
  const out = y.reshape(outShape);
  y.dispose();

  const saved = pre ? [rows, weight, pre] : [rows, weight];
  const result = Tensor.record(op, [x, weight, bias], out, (g, [savedRows, savedWeight, savedPre]) => {
    // With dh = dy * act'(pre): dx = dh W, dW = dh^T x, db = sum of dh over rows.
    const g2 = g.reshape([-1, outFeatures]);
    const dh = activation === 'none' ? g2 : mapOp(op, ACTIVATION_BACKWARD[activation], [g2, savedPre]);
    const grads: (Tensor | null)[] = [null, null, null];
    if (x.requiresGrad) {
      const dx = dh.matmul(savedWeight);
      grads[0] = dx.reshape([...x.shape]);
      dx.dispose();
    }
    if (weight.requiresGrad) {
      const dht = dh.t();
      grads[1] = dht.matmul(savedRows);
      dht.dispose();
    }
    if (bias?.requiresGrad) grads[2] = dh.sum(0);
    if (dh !== g2) dh.dispose();
    g2.dispose();
    return grads;
  }, saved);
  rows.dispose();
  pre?.dispose();
  return result;
}

registerOp('linear', [
  { label: 'no bias', args: [arg([5, 7]), arg([3, 7])], run: (x, w) => linear(x, w) },
  { label: 'bias, leading dims', args: [arg([2, 3, 7]), arg([5, 7]), arg([5])], run: (x, w, b) => linear(x, w, b) },
  { label: 'vector input', args: [arg([6]), arg([4, 6]), arg([4])], run: (x, w, b) => linear(x, w, b) },
  { label: 'odd sizes over several tiles', args: [arg([37, 19]), arg([41, 19]), arg([41])], run: (x, w, b) => linear(x, w, b) },
  { label: 'strided bias', args: [arg([4, 5]), arg([3, 5]), arg([6])], run: (x, w, b) => linear(x, w, b.narrow(0, 1, 3)) },
  { label: 'transposed input', args: [arg([7, 9]), arg([5, 7]), arg([5])], run: (x, w, b) => linear(x.t(), w, b) },
  { label: 'wide output over several tiles', args: [arg([19, 6]), arg([133, 6]), arg([133])], run: (x, w, b) => linear(x, w, b) },
]);

registerOp('linear with gelu', [
  { label: 'exact', args: [arg([9, 6]), arg([5, 6]), arg([5])], run: (x, w, b) => linear(x, w, b, 'gelu') },
  { label: 'tanh form, leading dims', args: [arg([2, 5, 6]), arg([7, 6]), arg([7])], run: (x, w, b) => linear(x, w, b, 'geluTanh') },
  { label: 'no bias, odd sizes over several tiles', args: [arg([21, 11]), arg([70, 11])], run: (x, w) => linear(x, w, null, 'gelu') },
  { label: 'wide output, strided bias', args: [arg([17, 5]), arg([131, 5]), arg([131, 2])], run: (x, w, b) => linear(x, w, b.narrow(1, 1, 1).squeeze(1), 'geluTanh') },
]);
