// matmul with torch.matmul's rules: 1-D operands gain and lose a dim, batch dims broadcast, and
// transposed operands are read through their strides instead of being copied.

import { getBackend } from '../runtime.js';
import { isFloating } from '../tensor/dtype.js';
import { broadcastShapes, formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { arg, registerOp } from './registry.js';
import { broadcastView, checkTensor, commonDevice } from './util.js';

export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor('matmul', a, 'first operand');
  checkTensor('matmul', b, 'second operand');
  const device = commonDevice('matmul', [a, b]);
  if (a.shape.length === 0 || b.shape.length === 0) {
    throw new Error(`matmul: both operands need at least one dim, got shapes ${formatShape(a.shape)} and ${formatShape(b.shape)}; use mul() for scalars`);
  }
  if (a.dtype !== b.dtype) throw new TypeError(`matmul: operands are ${a.dtype} and ${b.dtype}; convert one so both match`);
  if (!isFloating(a.dtype)) throw new TypeError(`matmul: dtype ${a.dtype} is not supported; convert to float32`);

  // 1-D operands: a vector on the left is a row, on the right a column; those dims are dropped at the end.
  const a2 = a.shape.length === 1 ? a.unsqueeze(0) : a.detach();
  const b2 = b.shape.length === 1 ? b.unsqueeze(1) : b.detach();
  const k = a2.shape[a2.shape.length - 1];
  if (b2.shape[b2.shape.length - 2] !== k) {
    a2.dispose();
    b2.dispose();
    throw new Error(
      `matmul: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} cannot be multiplied ` +
        `(inner dimensions ${k} and ${b2.shape[b2.shape.length - 2]} differ)`,
    );
  }
  const m = a2.shape[a2.shape.length - 2];
  const n = b2.shape[b2.shape.length - 1];
  const aBatch = a2.shape.slice(0, -2);
  const bBatch = b2.shape.slice(0, -2);
  if (!batchesBroadcast(aBatch, bBatch)) {
    a2.dispose();
    b2.dispose();
    throw new Error(
      `matmul: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} cannot be multiplied because their batch ` +
        `dimensions ${formatShape(aBatch)} and ${formatShape(bBatch)} do not broadcast; make each batch size equal or 1`,
    );
  }
  const batch = broadcastShapes('matmul', aBatch, bBatch);
  const aView = broadcastView('matmul', a2, [...batch, m, k]);
  const bView = broadcastView('matmul', b2, [...batch, k, n]);
  const storage = getBackend(device).matmul(aView, bView);
  a2.dispose();
  b2.dispose();
  let shape = [...batch, m, n];
  if (a.shape.length === 1) shape = shape.filter((_, i) => i !== shape.length - 2);
  if (b.shape.length === 1) shape = shape.slice(0, -1);
  const out = Tensor.fromStorage(storage, shape);

  return Tensor.record('matmul', [a, b], out, (g, [sa, sb]) => {
    // With G = dOut (as [..., m, n]): dA = G B^T and dB = A^T G, summed over broadcast batch dims.
    const g2 = g.reshape([...batch, m, n]);
    const A = sa.shape.length === 1 ? sa.unsqueeze(0) : sa.detach();
    const B = sb.shape.length === 1 ? sb.unsqueeze(1) : sb.detach();
    const result: (Tensor | null)[] = [null, null];
    if (a.requiresGrad) {
      const bt = B.transpose(-1, -2);
      const full = matmul(g2, bt);
      result[0] = reduceBatch(full, sa.shape);
      bt.dispose();
      full.dispose();
    }
    if (b.requiresGrad) {
      const at = A.transpose(-1, -2);
      const full = matmul(at, g2);
      result[1] = reduceBatch(full, sb.shape);
      at.dispose();
      full.dispose();
    }
    for (const t of [g2, A, B]) t.dispose();
    return result;
  }, [a, b]);
}

/** Returns whether two batch shapes broadcast: aligned from the right, each pair of sizes is equal or has a 1. */
function batchesBroadcast(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 1; i <= Math.min(a.length, b.length); i++) {
    const x = a[a.length - i];
    const y = b[b.length - i];
    if (x !== y && x !== 1 && y !== 1) return false;
  }
  return true;
}

/** Sums a gradient of shape [...batch, r, c] over the batch dims that broadcasting added, then fits `shape`. */
function reduceBatch(grad: Tensor, shape: readonly number[]): Tensor {
  const matrixShape = shape.length === 1 ? null : shape;
  const rank = grad.shape.length;
  const target = matrixShape ?? grad.shape.slice(rank - 2).map((d) => d);
  const lead = rank - target.length;
  const dims: number[] = [];
  for (let i = 0; i < rank - 2; i++) {
    if (i < lead || (target[i - lead] === 1 && grad.shape[i] !== 1)) dims.push(i);
  }
  const summed = dims.length > 0 ? grad.sum(dims, true) : grad.detach();
  const out = summed.reshape([...shape]);
  summed.dispose();
  return out;
}

registerOp('matmul', [
  { label: 'matrix', args: [arg([3, 4]), arg([4, 5])], run: (a, b) => a.matmul(b) },
  { label: 'odd sizes beyond one tile', args: [arg([37, 19]), arg([19, 41])], run: (a, b) => a.matmul(b) },
  { label: 'vector on the left', args: [arg([4]), arg([4, 3])], run: (a, b) => a.matmul(b) },
  { label: 'vector on the right', args: [arg([2, 3, 4]), arg([4])], run: (a, b) => a.matmul(b) },
  { label: 'dot product', args: [arg([6]), arg([6])], run: (a, b) => a.matmul(b) },
  { label: 'transposed operands', args: [arg([5, 3]), arg([4, 5])], run: (a, b) => a.t().matmul(b.t()) },
  { label: 'broadcast batch', args: [arg([2, 1, 3, 4]), arg([3, 4, 2])], run: (a, b) => a.matmul(b) },
  { label: 'batched transposed', args: [arg([2, 5, 3]), arg([2, 5, 4])], run: (a, b) => a.transpose(1, 2).matmul(b) },
  // The WebGPU kernel reads B as vec4 along n where the strides allow, and through strides otherwise.
  { label: 'vec4 columns over several tiles', args: [arg([33, 8]), arg([8, 68])], run: (a, b) => a.matmul(b) },
  { label: 'vec4 columns, partial last group', args: [arg([5, 6]), arg([6, 12])], run: (a, b) => a.matmul(b.narrow(1, 0, 10)) },
  { label: 'vec4 columns, broadcast batch', args: [arg([2, 1, 17, 4]), arg([3, 4, 8])], run: (a, b) => a.matmul(b) },
  { label: 'x @ w.t() over several tiles', args: [arg([19, 8]), arg([6, 8])], run: (a, w) => a.matmul(w.t()) },
  { label: 'x @ w.t() with odd k', args: [arg([7, 11]), arg([5, 12])], run: (a, w) => a.matmul(w.narrow(1, 0, 11).t()) },
  { label: 'q @ k.transpose batched', args: [arg([2, 3, 17, 8]), arg([2, 3, 18, 8])], run: (q, k) => q.matmul(k.transpose(-1, -2)) },
  // Wide outputs (64 columns and up on lavapipe) give each WebGPU invocation 8 or 16 columns, two or four vec4 groups.
  { label: 'wide vec4 columns, partial last group', args: [arg([37, 6]), arg([6, 140])], run: (a, b) => a.matmul(b.narrow(1, 0, 133)) },
  { label: 'wide vec4 columns at an offset', args: [arg([5, 3]), arg([3, 136])], run: (a, b) => a.matmul(b.narrow(1, 4, 129)) },
  { label: 'wide strided columns at an odd offset', args: [arg([5, 3]), arg([3, 136])], run: (a, b) => a.matmul(b.narrow(1, 1, 131)) },
  { label: 'wide x @ w.t() with odd k', args: [arg([19, 9]), arg([130, 9])], run: (a, w) => a.matmul(w.t()) },
  { label: 'wide a.t() @ b', args: [arg([7, 21]), arg([7, 67])], run: (a, b) => a.t().matmul(b) },
  { label: 'wide columns, broadcast batch', args: [arg([2, 1, 3, 4]), arg([3, 4, 128])], run: (a, b) => a.matmul(b) },
]);
