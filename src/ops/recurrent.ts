// Fused recurrences behind nn.RNN, nn.LSTM and nn.GRU: one op runs one layer over every timestep.
// The input projections x W_ih^T + b arrive precomputed for all steps (one matmul outside the loop), and
// each step is one matmul h W_hh^T plus a few elementwise kernels that write into buffers allocated once
// per call. Backward is backpropagation through time with the same kernels, so the tape records one node
// per layer instead of a dozen per step.
//
// Every kernel here writes a buffer that none of its inputs lives in: WebGPU cannot bind one buffer as
// read-only and writable in the same dispatch, and the backend would otherwise copy through a temporary.
// That is why states that a step both reads and writes alternate between two buffers (ParityBuffers).

import type { Backend, MapKernel, View } from '../backends/backend.js';
import { getBackend, isGradEnabled } from '../runtime.js';
import { DType, isFloating } from '../tensor/dtype.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from './creation.js';
import { K } from './elementwise.js';
import { arg, registerOp } from './registry.js';
import { checkTensor, commonDevice, empty } from './util.js';

export type RnnNonlinearity = 'tanh' | 'relu';

function sigmoidJs(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function kernel(name: string, arity: number, wgsl: string, js: MapKernel['js'], helpers: string[] = []): MapKernel {
  return { name, arity, wgsl, js, helpers };
}

/** The elementwise kernels of the recurrences; `T(...)` in WGSL stands for the compute type. */
const R = {
  // LSTM gate activations over a [B, 4, H] view: c is 1 for the sigmoid gates i, f, o and 0 for g (tanh).
  lstmGates: kernel('lstmGates', 3, 'select(tanh_f32(a + b), sigmoid_f32(a + b), c != T(0))',
    (a, b, c) => (c !== 0 ? sigmoidJs(a + b) : Math.tanh(a + b)), ['tanh', 'sigmoid']),
  fma: kernel('rnnFma', 3, 'a * b + c', (a, b, c) => a * b + c),
  add3: kernel('rnnAdd3', 3, 'a + b + c', (a, b, c) => a + b + c),
  mulTanh: kernel('rnnMulTanh', 2, 'a * tanh_f32(b)', (a, b) => a * Math.tanh(b), ['tanh']),
  sigmoidSum: kernel('rnnSigmoidSum', 3, 'sigmoid_f32(a + b + c)', (a, b, c) => sigmoidJs(a + b + c), ['sigmoid']),
  tanhSum: kernel('rnnTanhSum', 2, 'tanh_f32(a + b)', (a, b) => Math.tanh(a + b), ['tanh']),
  reluSum: kernel('rnnReluSum', 2, 'max(a + b, T(0))', (a, b) => Math.max(a + b, 0)),
  // GRU: n = tanh(x_n + r * (W_hn h + b_hn)) and h' = (1 - z) * n + z * h.
  gruN: kernel('gruN', 3, 'tanh_f32(a + b * c)', (a, b, c) => Math.tanh(a + b * c), ['tanh']),
  gruH: kernel('gruH', 3, '(1.0 - a) * b + a * c', (a, b, c) => (1 - a) * b + a * c),

  // Backward. A gate's output y = sigmoid(p) has dp = dy * y * (1 - y); y = tanh(p) has dp = dy * (1 - y^2).
  mulSigmoidGrad: kernel('rnnMulSigmoidGrad', 3, 'a * b * c * (1.0 - c)', (a, b, c) => a * b * c * (1 - c)),
  mulTanhGrad: kernel('rnnMulTanhGrad', 3, 'a * b * (1.0 - c * c)', (a, b, c) => a * b * (1 - c * c)),
  lstmGradO: kernel('lstmGradO', 3, 'a * tanh_f32(b) * c * (1.0 - c)', (a, b, c) => a * Math.tanh(b) * c * (1 - c), ['tanh']),
  lstmGradC: kernel('lstmGradC', 3, 'a + b * (1.0 - tanh_f32(c) * tanh_f32(c))', (a, b, c) => a + b * (1 - Math.tanh(c) ** 2), ['tanh']),
  gruGradN: kernel('gruGradN', 3, 'a * (1.0 - b) * (1.0 - c * c)', (a, b, c) => a * (1 - b) * (1 - c * c)),
  tanhGradSum: kernel('rnnTanhGradSum', 3, '(a + b) * (1.0 - c * c)', (a, b, c) => (a + b) * (1 - c * c)),
  reluGradSum: kernel('rnnReluGradSum', 3, 'select(T(0), a + b, c > T(0))', (a, b, c) => (c > 0 ? a + b : 0)),
};

// ---- views: windows into storages, built without tensor handles ----

/** Entry t of dim 0. */
function step(v: View, t: number): View {
  return { storage: v.storage, shape: v.shape.slice(1), strides: v.strides.slice(1), offset: v.offset + t * v.strides[0] };
}

/** Entries [start, start + width) of the last dim. */
function columns(v: View, start: number, width: number): View {
  const last = v.shape.length - 1;
  const shape = [...v.shape];
  shape[last] = width;
  return { storage: v.storage, shape, strides: v.strides, offset: v.offset + start * v.strides[last] };
}

/** Splits the last dim into [parts, width / parts]. */
function splitLast(v: View, parts: number): View {
  const last = v.shape.length - 1;
  const width = v.shape[last] / parts;
  const stride = v.strides[last];
  return {
    storage: v.storage,
    shape: [...v.shape.slice(0, last), parts, width],
    strides: [...v.strides.slice(0, last), width * stride, stride],
    offset: v.offset,
  };
}

function transposed(v: View): View {
  return { storage: v.storage, shape: [v.shape[1], v.shape[0]], strides: [v.strides[1], v.strides[0]], offset: v.offset };
}

/** Repeats a 1-D view over `rows` rows (row stride 0). */
function repeatRows(v: View, rows: number): View {
  return { storage: v.storage, shape: [rows, v.shape[0]], strides: [0, v.strides[0]], offset: v.offset };
}

/** Rows start..start+count-1 of a contiguous 3-D view [T, B, N], as one [count * B, N] matrix. */
function mergeRows(v: View, start: number, count: number): View {
  const [, b, n] = v.shape;
  return { storage: v.storage, shape: [count * b, n], strides: [n, 1], offset: v.offset + start * b * n };
}

/** One step's kernels and matmuls on one backend, in one compute dtype. */
class Steps {
  constructor(readonly backend: Backend, readonly dtype: DType) {}

  map(k: MapKernel, inputs: readonly (View | number)[], out: View, params: number[] = []): void {
    this.backend.map(k, inputs, this.dtype, out, params);
  }

  /** a [m, k] times b [k, n] as a new tensor. */
  matmul(a: View, b: View): Tensor {
    return Tensor.fromStorage(this.backend.matmul(a, b), [a.shape[0], b.shape[1]]);
  }
}

/**
 * Per-step states in two buffers by the parity of the step, so that step t reads step t - 1 from one buffer
 * and writes the other. With `keepAll` every step keeps its row; without it each buffer has one row.
 */
class ParityBuffers {
  readonly even: Tensor;
  readonly odd: Tensor;

  constructor(readonly steps: number, rowShape: number[], dtype: DType, device: Tensor['device'], readonly keepAll: boolean) {
    const evenRows = keepAll ? Math.ceil(steps / 2) : 1;
    const oddRows = keepAll ? Math.max(1, Math.floor(steps / 2)) : 1;
    this.even = empty([evenRows, ...rowShape], dtype, device);
    this.odd = empty([oddRows, ...rowShape], dtype, device);
  }

  /** The state of step t, in buffers given in the order [even, odd] (the saved copies in backward). */
  static at(buffers: readonly Tensor[], t: number, keepAll: boolean): View {
    const v = buffers[t % 2].asView('recurrence');
    return step(v, keepAll ? Math.floor(t / 2) : 0);
  }

  at(t: number): View {
    return ParityBuffers.at([this.even, this.odd], t, this.keepAll);
  }

  /** Copies every step, in order, into rows 0..steps-1 of a contiguous [steps, ...] tensor (two kernels). */
  copyInto(s: Steps, out: Tensor): void {
    const o = out.asView('recurrence');
    for (const [parity, buffer] of [this.even, this.odd].entries()) {
      const rows = parity === 0 ? Math.ceil(this.steps / 2) : Math.floor(this.steps / 2);
      if (rows === 0) continue;
      const src = buffer.asView('recurrence');
      const dst: View = {
        storage: o.storage,
        shape: [rows, ...o.shape.slice(1)],
        strides: [2 * o.strides[0], ...o.strides.slice(1)],
        offset: o.offset + parity * o.strides[0],
      };
      s.map(K.identity, [{ ...src, shape: dst.shape }], dst);
    }
  }

  dispose(): void {
    this.even.dispose();
    this.odd.dispose();
  }
}

/**
 * dW_hh = sum over steps t of D[t]^T h[t - 1], with h[-1] = h0 (skipped where h0 is zero): one matmul for
 * steps 1..T-1 against the hidden states 0..T-2 (contiguous rows of `hidden`) and one for step 0.
 */
function recurrentWeightGrad(s: Steps, d: Tensor, hidden: View, h0: View | null, shape: [number, number]): Tensor {
  const dv = d.asView('recurrence');
  const steps = d.shape[0];
  const parts: Tensor[] = [];
  if (steps > 1) parts.push(s.matmul(transposed(mergeRows(dv, 1, steps - 1)), mergeRows(hidden, 0, steps - 1)));
  if (h0) parts.push(s.matmul(transposed(step(dv, 0)), h0));
  if (parts.length === 0) {
    const zeros = empty(shape, s.dtype, d.device);
    s.map(K.fill, [], zeros.asView('recurrence'), [0]);
    return zeros;
  }
  if (parts.length === 1) return parts[0];
  const total = empty(shape, s.dtype, d.device);
  s.map(K.add, [parts[0].asView('recurrence'), parts[1].asView('recurrence')], total.asView('recurrence'));
  parts.forEach((p) => p.dispose());
  return total;
}

// ---- checks ----

interface Sizes {
  steps: number;
  batch: number;
  hidden: number;
}

function checkInputs(op: string, gates: number, xProj: Tensor, weightHh: Tensor, states: Record<string, Tensor | null>): Sizes {
  checkTensor(op, xProj, 'input projection');
  checkTensor(op, weightHh, 'weightHh');
  if (!isFloating(xProj.dtype)) throw new TypeError(`${op}: expects floating-point inputs, got ${xProj.dtype}`);
  if (xProj.shape.length !== 3) throw new Error(`${op}: the input projection must be 3-D [steps, batch, ${gates} * hidden], got shape ${formatShape(xProj.shape)}`);
  if (weightHh.shape.length !== 2) throw new Error(`${op}: weightHh must be 2-D [${gates} * hidden, hidden], got shape ${formatShape(weightHh.shape)}`);
  const [steps, batch, width] = xProj.shape;
  const hidden = weightHh.shape[1];
  if (weightHh.shape[0] !== gates * hidden || width !== gates * hidden) {
    throw new Error(`${op}: weightHh of shape ${formatShape(weightHh.shape)} and an input projection of shape ${formatShape(xProj.shape)} do not fit ${gates} gates of hidden size ${hidden}`);
  }
  if (steps === 0) throw new Error(`${op}: the sequence is empty (0 steps); pass at least one step`);
  const tensors: Tensor[] = [xProj, weightHh];
  for (const [name, t] of Object.entries(states)) {
    if (t === null) continue;
    checkTensor(op, t, name);
    const expected = name === 'biasHh' ? [gates * hidden] : [batch, hidden];
    if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
      throw new Error(`${op}: ${name} must have shape ${formatShape(expected)}, got ${formatShape(t.shape)}`);
    }
    tensors.push(t);
  }
  commonDevice(op, tensors);
  for (const t of tensors) {
    if (t.dtype !== xProj.dtype) throw new TypeError(`${op}: all inputs must share one dtype, got ${xProj.dtype} and ${t.dtype}`);
  }
  return { steps, batch, hidden };
}

function needsGrad(tensors: readonly (Tensor | null)[]): boolean {
  return isGradEnabled() && tensors.some((t) => t?.requiresGrad);
}

// ---- LSTM ----

/**
 * Runs one LSTM layer over all steps, with PyTorch's gate order i, f, g, o:
 *   gates = xProj[t] + h W_hh^T,  c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c').
 * xProj is [T, B, 4H] and already includes both biases. A missing h0 or c0 is zero. Returns [T + 1, B, H]:
 * rows 0..T-1 are the hidden states h_1..h_T and row T is the last cell state c_T (one tensor, so that one
 * graph node covers both). Saved for backward: the activated gates and every cell state.
 */
export function lstmRecurrence(xProj: Tensor, weightHh: Tensor, h0: Tensor | null = null, c0: Tensor | null = null): Tensor {
  const op = 'lstm';
  const { steps, batch, hidden: H } = checkInputs(op, 4, xProj, weightHh, { h0, c0 });
  const dtype = xProj.dtype;
  const device = xProj.device;
  const s = new Steps(getBackend(device), dtype);
  const grad = needsGrad([xProj, weightHh, h0, c0]);

  const act = empty([grad ? steps : 1, batch, 4 * H], dtype, device);
  const cells = new ParityBuffers(steps, [batch, H], dtype, device, grad);
  const out = empty([steps + 1, batch, H], dtype, device);
  const selector = tensor([1, 1, 0, 1], { dtype, device });
  const sel: View = { ...selector.asView(op), shape: [batch, 4, H], strides: [0, 1, 0] };
  const X = xProj.asView(op);
  const Wt = transposed(weightHh.asView(op));
  const A = act.asView(op);
  const O = out.asView(op);

  let hPrev: View | null = h0 ? h0.asView(op) : null;
  let cPrev: View | number = c0 ? c0.asView(op) : 0;
  for (let t = 0; t < steps; t++) {
    const a = step(A, grad ? t : 0);
    const hh = hPrev ? s.matmul(hPrev, Wt) : null;
    s.map(R.lstmGates, [splitLast(step(X, t), 4), hh ? splitLast(hh.asView(op), 4) : 0, sel], splitLast(a, 4));
    hh?.dispose();
    // h[t] serves as scratch for sigmoid(i) * tanh(g) until it receives the hidden state.
    const h = step(O, t);
    const c = cells.at(t);
    s.map(K.mul, [columns(a, 0, H), columns(a, 2 * H, H)], h);
    s.map(R.fma, [columns(a, H, H), cPrev, h], c);
    s.map(R.mulTanh, [columns(a, 3 * H, H), c], h);
    hPrev = h;
    cPrev = c;
  }
  s.map(K.identity, [cPrev], step(O, steps));
  selector.dispose();

  if (!grad) {
    act.dispose();
    cells.dispose();
    return out;
  }
  const wanted = { xProj: xProj.requiresGrad, weightHh: weightHh.requiresGrad, h0: !!h0?.requiresGrad, c0: !!c0?.requiresGrad };
  const [hasH0, hasC0] = [h0 !== null, c0 !== null];
  const saved = [act, cells.even, cells.odd, out, weightHh, ...(h0 ? [h0] : []), ...(c0 ? [c0] : [])];
  const result = Tensor.record(op, [xProj, weightHh, h0, c0], out, (g, t) => {
    // Saved: act, the two cell buffers, out, weightHh, then h0 and c0 where given.
    const sH0 = hasH0 ? t[5] : null;
    const c0Index = hasH0 ? 6 : 5;
    const sC0 = hasC0 ? t[c0Index] : null;
    return lstmBackward(s, g, { act: t[0], cells: [t[1], t[2]], out: t[3], weightHh: t[4], h0: sH0, c0: sC0 }, wanted);
  }, saved);
  act.dispose();
  cells.dispose();
  return result;
}

interface LstmSaved {
  act: Tensor;
  cells: Tensor[];
  out: Tensor;
  weightHh: Tensor;
  h0: Tensor | null;
  c0: Tensor | null;
}

function lstmBackward(s: Steps, g: Tensor, saved: LstmSaved, wanted: Record<'xProj' | 'weightHh' | 'h0' | 'c0', boolean>): (Tensor | null)[] {
  const op = 'lstm backward';
  const [steps, batch, H] = [saved.act.shape[0], saved.act.shape[1], saved.act.shape[2] / 4];
  const { dtype } = s;
  const device = g.device;
  const G = g.asView(op);
  const A = saved.act.asView(op);
  const W = saved.weightHh.asView(op);
  const h0 = saved.h0?.asView(op) ?? null;
  const c0 = saved.c0?.asView(op) ?? null;
  const dGates = empty([steps, batch, 4 * H], dtype, device);
  const DG = dGates.asView(op);
  const scratch = [0, 1, 2, 3].map(() => empty([batch, H], dtype, device));
  const [dhSum, dhO, dcTotal, dcCarry] = scratch.map((t) => t.asView(op));

  let recurrent: Tensor | null = null;
  let dcIn: View = step(G, steps);
  for (let t = steps - 1; t >= 0; t--) {
    const a = step(A, t);
    const dg = step(DG, t);
    const c = ParityBuffers.at(saved.cells, t, true);
    const cPrev: View | number = t > 0 ? ParityBuffers.at(saved.cells, t - 1, true) : c0 ?? 0;
    const [i, f, gg, o] = [0, 1, 2, 3].map((k) => columns(a, k * H, H));

    // dL/dh[t]: from the output at t and from step t + 1 through W_hh.
    let dh = step(G, t);
    if (recurrent) {
      s.map(K.add, [dh, recurrent.asView(op)], dhSum);
      recurrent.dispose();
      recurrent = null;
      dh = dhSum;
    }
    s.map(R.lstmGradO, [dh, c, o], columns(dg, 3 * H, H));
    s.map(K.mul, [dh, o], dhO);
    s.map(R.lstmGradC, [dcIn, dhO, c], dcTotal);
    s.map(R.mulSigmoidGrad, [dcTotal, gg, i], columns(dg, 0, H));
    s.map(R.mulSigmoidGrad, [dcTotal, cPrev, f], columns(dg, H, H));
    s.map(R.mulTanhGrad, [dcTotal, i, gg], columns(dg, 2 * H, H));
    if (t > 0 || wanted.c0) {
      s.map(K.mul, [dcTotal, f], dcCarry);
      dcIn = dcCarry;
    }
    if (t > 0 || wanted.h0) recurrent = s.matmul(dg, W);
  }

  const dWeight = wanted.weightHh ? recurrentWeightGrad(s, dGates, saved.out.asView(op), h0, [4 * H, H]) : null;
  const dc0 = wanted.c0 ? scratch[3] : null;
  for (const t of scratch) if (t !== dc0) t.dispose();
  const dXProj = wanted.xProj ? dGates : (dGates.dispose(), null);
  return [dXProj, dWeight, recurrent, dc0];
}

// ---- GRU ----

/**
 * Runs one GRU layer over all steps, with PyTorch's gate order r, z, n:
 *   r = sigmoid(x_r + W_hr h + b_hr),  z = sigmoid(x_z + W_hz h + b_hz),
 *   n = tanh(x_n + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h.
 * xProj is [T, B, 3H] and includes b_ih; biasHh ([3H] or null) stays separate because r multiplies its n part.
 * A missing h0 is zero. Returns the hidden states [T, B, H]. Saved for backward: r and z, W_hn h + b_hn and n.
 */
export function gruRecurrence(xProj: Tensor, weightHh: Tensor, biasHh: Tensor | null = null, h0: Tensor | null = null): Tensor {
  const op = 'gru';
  const { steps, batch, hidden: H } = checkInputs(op, 3, xProj, weightHh, { biasHh, h0 });
  const dtype = xProj.dtype;
  const device = xProj.device;
  const s = new Steps(getBackend(device), dtype);
  const grad = needsGrad([xProj, weightHh, biasHh, h0]);
  const slots = grad ? steps : 1;

  const rz = empty([slots, batch, 2 * H], dtype, device);
  const hn = empty([slots, batch, H], dtype, device);
  const n = empty([slots, batch, H], dtype, device);
  const states = new ParityBuffers(steps, [batch, H], dtype, device, true);
  const X = xProj.asView(op);
  const Wt = transposed(weightHh.asView(op));
  const b = biasHh?.asView(op);
  const bRZ = b ? repeatRows(columns(b, 0, 2 * H), batch) : 0;
  const bN = b ? repeatRows(columns(b, 2 * H, H), batch) : 0;

  let hPrev: View | null = h0 ? h0.asView(op) : null;
  for (let t = 0; t < steps; t++) {
    const slot = grad ? t : 0;
    const x = step(X, t);
    const gates = step(rz.asView(op), slot);
    const hnT = step(hn.asView(op), slot);
    const nT = step(n.asView(op), slot);
    const hh = hPrev ? s.matmul(hPrev, Wt) : null;
    const hhv = hh?.asView(op);
    s.map(R.sigmoidSum, [columns(x, 0, 2 * H), hhv ? columns(hhv, 0, 2 * H) : 0, bRZ], gates);
    s.map(K.add, [hhv ? columns(hhv, 2 * H, H) : 0, bN], hnT);
    hh?.dispose();
    s.map(R.gruN, [columns(x, 2 * H, H), columns(gates, 0, H), hnT], nT);
    const h = states.at(t);
    s.map(R.gruH, [columns(gates, H, H), nT, hPrev ?? 0], h);
    hPrev = h;
  }
  const out = empty([steps, batch, H], dtype, device);
  states.copyInto(s, out);
  states.dispose();

  if (!grad) {
    for (const t of [rz, hn, n]) t.dispose();
    return out;
  }
  const wanted = { xProj: xProj.requiresGrad, weightHh: weightHh.requiresGrad, biasHh: !!biasHh?.requiresGrad, h0: !!h0?.requiresGrad };
  const hasH0 = h0 !== null;
  const saved = [rz, hn, n, out, weightHh, ...(h0 ? [h0] : [])];
  const result = Tensor.record(op, [xProj, weightHh, biasHh, h0], out, (g, t) => {
    return gruBackward(s, g, { rz: t[0], hn: t[1], n: t[2], out: t[3], weightHh: t[4], h0: hasH0 ? t[5] : null }, wanted);
  }, saved);
  for (const t of [rz, hn, n]) t.dispose();
  return result;
}

interface GruSaved {
  rz: Tensor;
  hn: Tensor;
  n: Tensor;
  out: Tensor;
  weightHh: Tensor;
  h0: Tensor | null;
}

function gruBackward(s: Steps, g: Tensor, saved: GruSaved, wanted: Record<'xProj' | 'weightHh' | 'biasHh' | 'h0', boolean>): (Tensor | null)[] {
  const op = 'gru backward';
  const [steps, batch, H] = saved.n.shape;
  const { dtype } = s;
  const device = g.device;
  const G = g.asView(op);
  const RZ = saved.rz.asView(op);
  const HN = saved.hn.asView(op);
  const N = saved.n.asView(op);
  const O = saved.out.asView(op);
  const W = saved.weightHh.asView(op);
  const h0 = saved.h0?.asView(op) ?? null;
  // dX: gradients of the input projection [r, z, n]; dHH: of W_hh h + b_hh, whose n part is scaled by r.
  const dX = empty([steps, batch, 3 * H], dtype, device);
  const dHH = empty([steps, batch, 3 * H], dtype, device);
  const DX = dX.asView(op);
  const DHH = dHH.asView(op);
  const scratch = [0, 1, 2].map(() => empty([batch, H], dtype, device));
  const [dhSum, diff, dhDirect] = scratch.map((t) => t.asView(op));

  let recurrent: Tensor | null = null;
  for (let t = steps - 1; t >= 0; t--) {
    const gates = step(RZ, t);
    const [r, z] = [columns(gates, 0, H), columns(gates, H, H)];
    const nT = step(N, t);
    const hPrev: View | number = t > 0 ? step(O, t - 1) : h0 ?? 0;
    const dx = step(DX, t);
    const dhh = step(DHH, t);
    const dnPre = columns(dx, 2 * H, H);

    // dL/dh[t]: from the output at t, through W_hh at step t + 1, and directly through z * h at t + 1.
    let dh = step(G, t);
    if (recurrent) {
      s.map(R.add3, [dh, recurrent.asView(op), dhDirect], dhSum);
      recurrent.dispose();
      recurrent = null;
      dh = dhSum;
    }
    // The r and z gradients are the same for both projections: computed into dHH, then copied to dX.
    s.map(R.gruGradN, [dh, z, nT], dnPre);
    s.map(K.sub, [hPrev, nT], diff);
    s.map(R.mulSigmoidGrad, [dh, diff, z], columns(dhh, H, H));
    s.map(R.mulSigmoidGrad, [dnPre, step(HN, t), r], columns(dhh, 0, H));
    s.map(K.mul, [dnPre, r], columns(dhh, 2 * H, H));
    s.map(K.identity, [columns(dhh, 0, 2 * H)], columns(dx, 0, 2 * H));
    if (t > 0 || wanted.h0) {
      s.map(K.mul, [dh, z], dhDirect);
      recurrent = s.matmul(dhh, W);
    }
  }

  const dWeight = wanted.weightHh ? recurrentWeightGrad(s, dHH, O, h0, [3 * H, H]) : null;
  const dBias = wanted.biasHh ? dHH.sum([0, 1]) : null;
  let dh0: Tensor | null = null;
  if (wanted.h0 && recurrent) {
    dh0 = empty([batch, H], dtype, device);
    s.map(K.add, [recurrent.asView(op), dhDirect], dh0.asView(op));
  }
  recurrent?.dispose();
  for (const t of scratch) t.dispose();
  dHH.dispose();
  const dXProj = wanted.xProj ? dX : (dX.dispose(), null);
  return [dXProj, dWeight, dBias, dh0];
}

// ---- Elman RNN ----

/**
 * Runs one Elman RNN layer over all steps: h' = act(xProj[t] + h W_hh^T) with act tanh or relu. xProj is
 * [T, B, H] and already includes both biases, and a missing h0 is zero. Returns the hidden states [T, B, H],
 * which are also all that backward needs.
 */
export function rnnRecurrence(xProj: Tensor, weightHh: Tensor, h0: Tensor | null = null, nonlinearity: RnnNonlinearity = 'tanh'): Tensor {
  const op = 'rnn';
  if (nonlinearity !== 'tanh' && nonlinearity !== 'relu') {
    throw new TypeError(`${op}: nonlinearity must be 'tanh' or 'relu', got ${JSON.stringify(nonlinearity)}`);
  }
  const { steps, batch, hidden: H } = checkInputs(op, 1, xProj, weightHh, { h0 });
  const dtype = xProj.dtype;
  const device = xProj.device;
  const s = new Steps(getBackend(device), dtype);
  const forwardKernel = nonlinearity === 'tanh' ? R.tanhSum : R.reluSum;

  const out = empty([steps, batch, H], dtype, device);
  const X = xProj.asView(op);
  const O = out.asView(op);
  const Wt = transposed(weightHh.asView(op));
  let hPrev: View | null = h0 ? h0.asView(op) : null;
  for (let t = 0; t < steps; t++) {
    const hh = hPrev ? s.matmul(hPrev, Wt) : null;
    s.map(forwardKernel, [step(X, t), hh ? hh.asView(op) : 0], step(O, t));
    hh?.dispose();
    hPrev = step(O, t);
  }
  if (!needsGrad([xProj, weightHh, h0])) return out;

  const gradKernel = nonlinearity === 'tanh' ? R.tanhGradSum : R.reluGradSum;
  const wanted = { xProj: xProj.requiresGrad, weightHh: weightHh.requiresGrad, h0: !!h0?.requiresGrad };
  return Tensor.record(op, [xProj, weightHh, h0], out, (g, [sOut, w, sH0]) => {
    const bop = 'rnn backward';
    const G = g.asView(bop);
    const Os = sOut.asView(bop);
    const Wv = w.asView(bop);
    const dPre = empty([steps, batch, H], dtype, device);
    const DP = dPre.asView(bop);
    let recurrent: Tensor | null = null;
    for (let t = steps - 1; t >= 0; t--) {
      s.map(gradKernel, [step(G, t), recurrent ? recurrent.asView(bop) : 0, step(Os, t)], step(DP, t));
      recurrent?.dispose();
      recurrent = t > 0 || wanted.h0 ? s.matmul(step(DP, t), Wv) : null;
    }
    const dWeight = wanted.weightHh ? recurrentWeightGrad(s, dPre, Os, sH0?.asView(bop) ?? null, [H, H]) : null;
    const dXProj = wanted.xProj ? dPre : (dPre.dispose(), null);
    return [dXProj, dWeight, recurrent];
  }, [out, weightHh, ...(h0 ? [h0] : [])]);
}

// ---- samples for the registry ----

// The wide samples (batch * hidden above a typical workgroup) scale W_hh down so that the gates do not
// saturate. They leave xProj and W_hh out of gradcheck to keep its element count small, and the gradients
// of h0 and c0 still pass through every backward kernel.
registerOp('lstm', [
  { label: 'with initial state', args: [arg([3, 2, 8]), arg([8, 2]), arg([2, 2]), arg([2, 2])], run: (x, w, h, c) => lstmRecurrence(x, w, h, c) },
  { label: 'zero initial state, one step', args: [arg([1, 3, 12]), arg([12, 3])], run: (x, w) => lstmRecurrence(x, w) },
  { label: 'only a cell state', args: [arg([4, 1, 4]), arg([4, 1]), arg([1, 1])], run: (x, w, c) => lstmRecurrence(x, w, null, c) },
  {
    label: 'wider than a workgroup',
    args: [arg([2, 3, 360], 'normal', { grad: false }), arg([360, 90], 'normal', { grad: false }), arg([3, 90]), arg([3, 90])],
    run: (x, w, h, c) => lstmRecurrence(x, w.mul(0.1), h, c),
  },
]);
registerOp('gru', [
  { label: 'with bias and initial state', args: [arg([3, 2, 6]), arg([6, 2]), arg([6]), arg([2, 2])], run: (x, w, b, h) => gruRecurrence(x, w, b, h) },
  { label: 'no bias, zero initial state', args: [arg([2, 3, 9]), arg([9, 3])], run: (x, w) => gruRecurrence(x, w) },
  { label: 'one step', args: [arg([1, 2, 6]), arg([6, 2]), arg([6]), arg([2, 2])], run: (x, w, b, h) => gruRecurrence(x, w, b, h) },
  {
    label: 'wider than a workgroup',
    args: [arg([3, 3, 270], 'normal', { grad: false }), arg([270, 90], 'normal', { grad: false }), arg([270]), arg([3, 90])],
    run: (x, w, b, h) => gruRecurrence(x, w.mul(0.1), b, h),
  },
]);
registerOp('rnn', [
  { label: 'tanh with initial state', args: [arg([4, 2, 3]), arg([3, 3]), arg([2, 3])], run: (x, w, h) => rnnRecurrence(x, w, h, 'tanh') },
  { label: 'relu, zero initial state', args: [arg([3, 3, 4]), arg([4, 4])], run: (x, w) => rnnRecurrence(x, w, null, 'relu') },
  {
    label: 'wider than a workgroup',
    args: [arg([3, 3, 90], 'normal', { grad: false }), arg([90, 90], 'normal', { grad: false }), arg([3, 90])],
    run: (x, w, h) => rnnRecurrence(x, w.mul(0.1), h, 'tanh'),
  },
]);
