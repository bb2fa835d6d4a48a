// Recurrent layers with torch.nn.RNN, LSTM and GRU's parameters, gate order and state layout.
//
// Parameter names are torch's in camelCase, so that a torch state dict maps one to one:
//   weight_ih_l{k} <-> weightIh_l{k}   [gates * hiddenSize, inputSize for k = 0, else hiddenSize]
//   weight_hh_l{k} <-> weightHh_l{k}   [gates * hiddenSize, hiddenSize]
//   bias_ih_l{k}   <-> biasIh_l{k}     [gates * hiddenSize]
//   bias_hh_l{k}   <-> biasHh_l{k}     [gates * hiddenSize]
// with gates = 1 (RNN), 4 (LSTM, rows in the order i, f, g, o) or 3 (GRU, rows in the order r, z, n).
//
// Each layer computes the input projections of all timesteps in one matmul, then runs the recurrence as
// one fused op (src/ops/recurrent.ts). With { layerNorm: true }, LSTM and GRU normalize as below, and the
// recurrence runs as separate ops per timestep because LayerNorm needs whole rows of W_hh h.

import { dropout } from '../ops/nn.js';
import { sigmoid, sub, tanh } from '../ops/elementwise.js';
import { layerNorm } from '../ops/layernorm.js';
import { full } from '../ops/creation.js';
import { stack } from '../ops/shape.js';
import { gruRecurrence, lstmRecurrence, rnnRecurrence } from '../ops/recurrent.js';
import type { RnnNonlinearity } from '../ops/recurrent.js';
import { checkTensor } from '../ops/util.js';
import { isFloating } from '../tensor/dtype.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { FactoryOptions, uniformTensor } from './init.js';
import { linear } from './linear.js';
import { Module, parameter } from './module.js';

export interface RnnBaseOptions extends FactoryOptions {
  /** Stacked layers; layer k > 0 reads the outputs of layer k - 1 (default 1). */
  numLayers?: number;
  /** Adds biasIh and biasHh (default true). */
  bias?: boolean;
  /** Input and output are [batch, seq, feature] instead of [seq, batch, feature]; states stay [layers, batch, hidden]. */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode (default 0). */
  dropout?: number;
}

export interface RnnOptions extends RnnBaseOptions {
  nonlinearity?: RnnNonlinearity;
}

export interface GatedRnnOptions extends RnnBaseOptions {
  /** Layer normalization of the gate pre-activations (and of the LSTM cell state), after Ba, Kiros and Hinton (2016). */
  layerNorm?: boolean;
}

/** The epsilon of the layer-normalized LSTM and GRU, torch.nn.LayerNorm's default. */
export const RNN_LAYER_NORM_EPS = 1e-5;

type Mode = 'RNN' | 'LSTM' | 'GRU';

const GATES: Record<Mode, number> = { RNN: 1, LSTM: 4, GRU: 3 };

/** Per-layer tensors looked up by name. */
interface LayerParams {
  weightIh: Tensor;
  weightHh: Tensor;
  biasIh: Tensor | null;
  biasHh: Tensor | null;
  lnWeightIh: Tensor | null;
  lnWeightHh: Tensor | null;
  lnWeightC: Tensor | null;
  lnBiasC: Tensor | null;
}

/** The input as [seq, batch, feature] (a view), and how to return outputs in the caller's layout. */
interface Layout {
  input: Tensor;
  batched: boolean;
  batch: number;
}

abstract class RnnBase extends Module {
  /** Layer k's weights, as torch's weight_ih_l{k} and weight_hh_l{k}. */
  [name: `weight${'Ih' | 'Hh'}_l${number}`]: Tensor;
  /** Layer k's biases and LayerNorm parameters, where the options create them. */
  [name: `bias${'Ih' | 'Hh'}_l${number}` | `lnWeight${'Ih' | 'Hh' | 'C'}_l${number}` | `lnBiasC_l${number}`]: Tensor | undefined;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly layerNorm: boolean;

  protected constructor(readonly mode: Mode, inputSize: number, hiddenSize: number, options: GatedRnnOptions) {
    super();
    const name = mode;
    for (const [key, value] of Object.entries({ inputSize, hiddenSize })) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name}: ${key} must be a positive integer, got ${value}`);
    }
    const numLayers = options.numLayers ?? 1;
    if (!Number.isInteger(numLayers) || numLayers < 1) throw new RangeError(`${name}: numLayers must be a positive integer, got ${numLayers}`);
    const p = options.dropout ?? 0;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`${name}: dropout must be between 0 and 1, got ${p}`);
    this.inputSize = inputSize;
    this.hiddenSize = hiddenSize;
    this.numLayers = numLayers;
    this.bias = options.bias ?? true;
    this.batchFirst = options.batchFirst ?? false;
    this.dropout = p;
    this.layerNorm = options.layerNorm ?? false;

    // torch: every weight and bias from U(-1/sqrt(hiddenSize), 1/sqrt(hiddenSize)); LayerNorm gains 1, biases 0.
    const bound = 1 / Math.sqrt(hiddenSize);
    const rows = GATES[mode] * hiddenSize;
    const factory = { dtype: options.dtype, device: options.device };
    for (let k = 0; k < numLayers; k++) {
      const inputs = k === 0 ? inputSize : hiddenSize;
      this.addParameter(`weightIh_l${k}`, uniformTensor([rows, inputs], bound, factory));
      this.addParameter(`weightHh_l${k}`, uniformTensor([rows, hiddenSize], bound, factory));
      if (this.bias) {
        this.addParameter(`biasIh_l${k}`, uniformTensor([rows], bound, factory));
        this.addParameter(`biasHh_l${k}`, uniformTensor([rows], bound, factory));
      }
      if (this.layerNorm) {
        this.addParameter(`lnWeightIh_l${k}`, full([rows], 1, factory));
        this.addParameter(`lnWeightHh_l${k}`, full([rows], 1, factory));
        if (mode === 'LSTM') {
          this.addParameter(`lnWeightC_l${k}`, full([hiddenSize], 1, factory));
          if (this.bias) this.addParameter(`lnBiasC_l${k}`, full([hiddenSize], 0, factory));
        }
      }
    }
  }

  private addParameter(name: string, value: Tensor): void {
    Object.assign(this, { [name]: parameter(value) });
  }

  /** Returns the parameters of layer k under their names without the `_l{k}` suffix. */
  protected layer(k: number): LayerParams {
    const get = (name: string): Tensor | null => {
      const value: unknown = (this as unknown as Record<string, unknown>)[`${name}_l${k}`];
      return value instanceof Tensor ? value : null;
    };
    const weightIh = get('weightIh');
    const weightHh = get('weightHh');
    if (!weightIh || !weightHh) throw new Error(`${this.mode}: layer ${k} has no weightIh_l${k} or weightHh_l${k}`);
    return {
      weightIh, weightHh, biasIh: get('biasIh'), biasHh: get('biasHh'),
      lnWeightIh: get('lnWeightIh'), lnWeightHh: get('lnWeightHh'), lnWeightC: get('lnWeightC'), lnBiasC: get('lnBiasC'),
    };
  }

  /** Checks the input and returns it as [seq, batch, inputSize]; a 2-D input is one unbatched sequence. */
  protected layout(input: Tensor): Layout {
    checkTensor(this.mode, input);
    if (!isFloating(input.dtype)) throw new TypeError(`${this.mode}: expects a floating-point input, got ${input.dtype}`);
    const expected = this.batchFirst ? '[batch, seq, inputSize]' : '[seq, batch, inputSize]';
    if ((input.ndim !== 2 && input.ndim !== 3) || input.shape[input.ndim - 1] !== this.inputSize) {
      throw new Error(`${this.mode}: expected input of shape ${expected} or [seq, inputSize] with inputSize ${this.inputSize}, got ${formatShape(input.shape)}`);
    }
    if (input.ndim === 2) return { input: input.unsqueeze(1), batched: false, batch: 1 };
    if (this.batchFirst) return { input: input.transpose(0, 1), batched: true, batch: input.shape[0] };
    return { input, batched: true, batch: input.shape[1] };
  }

  /** Splits an initial state [numLayers, batch, hidden] (or [numLayers, hidden] when unbatched) per layer. */
  protected initialStates(name: string, state: Tensor | undefined | null, layout: Layout): (Tensor | null)[] {
    if (state === undefined || state === null) return Array<Tensor | null>(this.numLayers).fill(null);
    checkTensor(this.mode, state, name);
    const expected = layout.batched ? [this.numLayers, layout.batch, this.hiddenSize] : [this.numLayers, this.hiddenSize];
    if (state.shape.length !== expected.length || state.shape.some((d, i) => d !== expected[i])) {
      throw new Error(`${this.mode}: expected ${name} of shape ${formatShape(expected)} (numLayers, ${layout.batched ? 'batch, ' : ''}hiddenSize), got ${formatShape(state.shape)}`);
    }
    const perLayer = layout.batched ? state : state.unsqueeze(1);
    const states = Array.from({ length: this.numLayers }, (_, k) => {
      const row = perLayer.narrow(0, k, 1);
      const squeezed = row.squeeze(0);
      row.dispose();
      return squeezed;
    });
    if (perLayer !== state) perLayer.dispose();
    return states;
  }

  /**
   * Computes x W_ih^T + bias for every step of a [seq, batch, features] input as one matmul. Returns
   * [seq, batch, rows], a transposed view when the input came batch-first, which the recurrence reads
   * through its strides.
   */
  protected inputProjection(x: Tensor, weight: Tensor, bias: Tensor | null, lnWeight: Tensor | null): Tensor {
    const [steps, batch, features] = x.shape;
    // A batch-first input arrives as the transpose of a contiguous [batch, seq, features] tensor.
    const batchMajor = !x.isContiguous() && x.strides[1] === steps * features && x.strides[0] === features && x.strides[2] === 1;
    const source = batchMajor ? x.transpose(0, 1) : x;
    const rows = source.reshape([-1, features]);
    if (source !== x) source.dispose();
    let projected = linear(rows, weight, lnWeight ? null : bias);
    rows.dispose();
    if (lnWeight) {
      const normalized = layerNorm(projected, weight.shape[0], lnWeight, null, RNN_LAYER_NORM_EPS);
      projected.dispose();
      projected = bias ? normalized.add(bias) : normalized;
      if (bias) normalized.dispose();
    }
    const shaped = projected.reshape(batchMajor ? [batch, steps, weight.shape[0]] : [steps, batch, weight.shape[0]]);
    projected.dispose();
    if (!batchMajor) return shaped;
    const out = shaped.transpose(0, 1);
    shaped.dispose();
    return out;
  }

  /** The bias folded into the input projection: biasIh + biasHh, or null without bias. */
  protected static combinedBias(params: LayerParams): Tensor | null {
    if (!params.biasIh || !params.biasHh) return null;
    return params.biasIh.add(params.biasHh);
  }

  /** Dropout between layers, in training mode and below the last layer only. */
  protected betweenLayers(output: Tensor, k: number): Tensor {
    if (!this.training || this.dropout === 0 || k === this.numLayers - 1) return output;
    const dropped = dropout(output, this.dropout, true);
    output.dispose();
    return dropped;
  }

  /** Returns the last layer's [seq, batch, hidden] output in the caller's layout. */
  protected finishOutput(output: Tensor, layout: Layout): Tensor {
    let out: Tensor;
    if (!layout.batched) out = output.squeeze(1);
    else if (this.batchFirst) out = output.transpose(0, 1);
    else return output;
    output.dispose();
    return out;
  }

  /** Stacks per-layer final states into [numLayers, batch, hidden] ([numLayers, hidden] when unbatched). */
  protected finishState(states: Tensor[], layout: Layout): Tensor {
    const stacked = stack(states, 0);
    states.forEach((t) => t.dispose());
    if (layout.batched) return stacked;
    const out = stacked.squeeze(1);
    stacked.dispose();
    return out;
  }

  override toString(): string {
    const extras = [
      this.numLayers !== 1 ? `numLayers=${this.numLayers}` : '', !this.bias ? 'bias=false' : '',
      this.batchFirst ? 'batchFirst=true' : '', this.dropout ? `dropout=${this.dropout}` : '', this.layerNorm ? 'layerNorm=true' : '',
    ].filter(Boolean);
    return `${this.mode}(${[this.inputSize, this.hiddenSize, ...extras].join(', ')})`;
  }
}

/** Returns step `row` (the last by default) of a [seq, batch, hidden] tensor as a [batch, hidden] view. */
function lastStep(t: Tensor, row = t.shape[0] - 1): Tensor {
  const narrow = t.narrow(0, row, 1);
  const out = narrow.squeeze(0);
  narrow.dispose();
  return out;
}

/**
 * An Elman RNN, as torch.nn.RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) with act tanh
 * (default) or relu. forward(input, h0?) returns [output, hN] with output [seq, batch, hidden] (batch first
 * with batchFirst) and hN [numLayers, batch, hidden]. A 2-D input [seq, inputSize] is one unbatched sequence.
 */
export class RNN extends RnnBase {
  readonly nonlinearity: RnnNonlinearity;

  constructor(inputSize: number, hiddenSize: number, options: RnnOptions = {}) {
    if ((options as GatedRnnOptions).layerNorm) throw new TypeError('RNN: layerNorm is available on LSTM and GRU only');
    super('RNN', inputSize, hiddenSize, options);
    const nonlinearity = options.nonlinearity ?? 'tanh';
    if (nonlinearity !== 'tanh' && nonlinearity !== 'relu') {
      throw new TypeError(`RNN: nonlinearity must be 'tanh' or 'relu', got ${JSON.stringify(nonlinearity)}`);
    }
    this.nonlinearity = nonlinearity;
  }

  forward(input: Tensor, h0?: Tensor | null): [Tensor, Tensor] {
    const layout = this.layout(input);
    const initial = this.initialStates('h0', h0, layout);
    let x = layout.input;
    const finals: Tensor[] = [];
    for (let k = 0; k < this.numLayers; k++) {
      const params = this.layer(k);
      const bias = RnnBase.combinedBias(params);
      const projected = this.inputProjection(x, params.weightIh, bias, null);
      bias?.dispose();
      const output = rnnRecurrence(projected, params.weightHh, initial[k], this.nonlinearity);
      projected.dispose();
      initial[k]?.dispose();
      finals.push(lastStep(output));
      if (x !== input) x.dispose();
      x = this.betweenLayers(output, k);
    }
    return [this.finishOutput(x, layout), this.finishState(finals, layout)];
  }
}

/**
 * A long short-term memory layer, as torch.nn.LSTM (Hochreiter and Schmidhuber, 1997), gates i, f, g, o:
 *   i, f, o = sigmoid(x W_i*^T + b_i* + h W_h*^T + b_h*),  g = tanh(same),
 *   c' = f * c + i * g,  h' = o * tanh(c').
 * forward(input, [h0, c0]?) returns [output, [hN, cN]]; shapes as in RNN.
 *
 * With { layerNorm: true } (Ba, Kiros and Hinton, 2016, the layer-normalized LSTM), each layer k computes
 *   gates = LN(x W_ih^T; lnWeightIh_l{k}) + LN(h W_hh^T; lnWeightHh_l{k}) + biasIh_l{k} + biasHh_l{k}
 *   c' = f * c + i * g,  h' = o * tanh(LN(c'; lnWeightC_l{k}, lnBiasC_l{k}))
 * where LN normalizes over the whole gate vector (4 * hiddenSize) or the cell (hiddenSize) with eps 1e-5.
 * The gate LayerNorms have a gain only ([4 * hiddenSize], ones at the start), because the biases already
 * shift the gates. The cell LayerNorm has a gain ([hiddenSize], ones) and, when bias is on, a bias (zeros).
 */
export class LSTM extends RnnBase {
  constructor(inputSize: number, hiddenSize: number, options: GatedRnnOptions = {}) {
    super('LSTM', inputSize, hiddenSize, options);
  }

  forward(input: Tensor, state?: [Tensor, Tensor] | null): [Tensor, [Tensor, Tensor]] {
    const layout = this.layout(input);
    if (state !== undefined && state !== null && (!Array.isArray(state) || state.length !== 2)) {
      throw new TypeError('LSTM: the initial state must be a pair [h0, c0]');
    }
    const h0s = this.initialStates('h0', state?.[0], layout);
    const c0s = this.initialStates('c0', state?.[1], layout);
    let x = layout.input;
    const hFinal: Tensor[] = [];
    const cFinal: Tensor[] = [];
    for (let k = 0; k < this.numLayers; k++) {
      const params = this.layer(k);
      const bias = RnnBase.combinedBias(params);
      const projected = this.inputProjection(x, params.weightIh, bias, params.lnWeightIh);
      bias?.dispose();
      let output: Tensor;
      if (this.layerNorm) {
        const result = layerNormLstm(projected, params, h0s[k], c0s[k]);
        output = result.output;
        hFinal.push(result.h);
        cFinal.push(result.c);
      } else {
        const packed = lstmRecurrence(projected, params.weightHh, h0s[k], c0s[k]);
        const steps = projected.shape[0];
        output = packed.narrow(0, 0, steps);
        hFinal.push(lastStep(packed, steps - 1));
        cFinal.push(lastStep(packed, steps));
        packed.dispose();
      }
      projected.dispose();
      h0s[k]?.dispose();
      c0s[k]?.dispose();
      if (x !== input) x.dispose();
      x = this.betweenLayers(output, k);
    }
    return [this.finishOutput(x, layout), [this.finishState(hFinal, layout), this.finishState(cFinal, layout)]];
  }
}

/**
 * A gated recurrent unit layer, as torch.nn.GRU (Cho et al., 2014), gates r, z, n:
 *   r, z = sigmoid(x W_i*^T + b_i* + h W_h*^T + b_h*),  n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),
 *   h' = (1 - z) * n + z * h.
 * forward(input, h0?) returns [output, hN]; shapes as in RNN.
 *
 * With { layerNorm: true }, each layer k normalizes both projections over the whole gate vector
 * (3 * hiddenSize, eps 1e-5) with gains lnWeightIh_l{k} and lnWeightHh_l{k} ([3 * hiddenSize], ones):
 *   a = LN(x W_ih^T; lnWeightIh) + b_ih,  b = LN(h W_hh^T; lnWeightHh) + b_hh,
 *   r, z = sigmoid(a_rz + b_rz),  n = tanh(a_n + r * b_n),  h' = (1 - z) * n + z * h.
 * A GRU has no cell state, so nothing else is normalized.
 */
export class GRU extends RnnBase {
  constructor(inputSize: number, hiddenSize: number, options: GatedRnnOptions = {}) {
    super('GRU', inputSize, hiddenSize, options);
  }

  forward(input: Tensor, h0?: Tensor | null): [Tensor, Tensor] {
    const layout = this.layout(input);
    const initial = this.initialStates('h0', h0, layout);
    let x = layout.input;
    const finals: Tensor[] = [];
    for (let k = 0; k < this.numLayers; k++) {
      const params = this.layer(k);
      const projected = this.inputProjection(x, params.weightIh, params.biasIh, params.lnWeightIh);
      const output = this.layerNorm
        ? layerNormGru(projected, params, initial[k])
        : gruRecurrence(projected, params.weightHh, params.biasHh, initial[k]);
      projected.dispose();
      initial[k]?.dispose();
      finals.push(lastStep(output));
      if (x !== input) x.dispose();
      x = this.betweenLayers(output, k);
    }
    return [this.finishOutput(x, layout), this.finishState(finals, layout)];
  }
}

// ---- layer-normalized recurrences, one step at a time ----

/** Releases the handles in `tensors` (a step's intermediates; the graph keeps what backward needs). */
function release(...tensors: (Tensor | null)[]): void {
  for (const t of tensors) t?.dispose();
}

/** Runs the layer-normalized LSTM over all steps of a projected input [seq, batch, 4 * hidden] (see LSTM). */
function layerNormLstm(projected: Tensor, params: LayerParams, h0: Tensor | null, c0: Tensor | null): { output: Tensor; h: Tensor; c: Tensor } {
  const [steps, , width] = projected.shape;
  const H = width / 4;
  const outputs: Tensor[] = [];
  let h = h0;
  let c = c0;
  for (let t = 0; t < steps; t++) {
    const x = lastStep(projected, t);
    let gates = x;
    if (h) {
      // LN of a zero vector is zero (no bias), so a missing h0 contributes nothing at t = 0.
      const hh = linear(h, params.weightHh);
      const normalized = layerNorm(hh, width, params.lnWeightHh, null, RNN_LAYER_NORM_EPS);
      gates = x.add(normalized);
      release(hh, normalized, x);
    }
    const activated = sigmoid(gates);
    const [i, f, o] = [0, 1, 3].map((k) => activated.narrow(1, k * H, H));
    const gPre = gates.narrow(1, 2 * H, H);
    const g = tanh(gPre);
    const ig = i.mul(g);
    let cNext = ig;
    if (c) {
      const fc = f.mul(c);
      cNext = fc.add(ig);
      release(fc, ig);
    }
    const cNormalized = layerNorm(cNext, H, params.lnWeightC, params.lnBiasC, RNN_LAYER_NORM_EPS);
    const cAct = tanh(cNormalized);
    const hNext = o.mul(cAct);
    release(gates, activated, i, f, o, gPre, g, cNormalized, cAct);
    if (c && c !== c0) c.dispose();
    outputs.push(hNext);
    h = hNext;
    c = cNext;
  }
  const output = stack(outputs, 0);
  const last = outputs.pop()!;
  release(...outputs);
  return { output, h: last, c: c! };
}

/** Runs the layer-normalized GRU over all steps of a projected input [seq, batch, 3 * hidden] (see GRU). */
function layerNormGru(projected: Tensor, params: LayerParams, h0: Tensor | null): Tensor {
  const [steps, , width] = projected.shape;
  const H = width / 3;
  const outputs: Tensor[] = [];
  let h = h0;
  for (let t = 0; t < steps; t++) {
    const x = lastStep(projected, t);
    // b = LN(h W_hh^T) + b_hh; with h = 0 the LN term is zero and b is the bias alone.
    let hh: Tensor | null = null;
    if (h) {
      const product = linear(h, params.weightHh);
      hh = layerNorm(product, width, params.lnWeightHh, null, RNN_LAYER_NORM_EPS);
      product.dispose();
    }
    if (params.biasHh) {
      const biased = hh ? hh.add(params.biasHh) : params.biasHh.view([width]);
      hh?.dispose();
      hh = biased;
    }
    const xRz = x.narrow(-1, 0, 2 * H);
    const xN = x.narrow(-1, 2 * H, H);
    let rz: Tensor;
    let n: Tensor;
    if (hh) {
      const hhRz = hh.narrow(-1, 0, 2 * H);
      const hhN = hh.narrow(-1, 2 * H, H);
      const sum = xRz.add(hhRz);
      rz = sigmoid(sum);
      const r = rz.narrow(-1, 0, H);
      const gated = r.mul(hhN);
      const nPre = xN.add(gated);
      n = tanh(nPre);
      release(hhRz, hhN, sum, r, gated, nPre, hh);
    } else {
      rz = sigmoid(xRz);
      n = tanh(xN);
    }
    const z = rz.narrow(-1, H, H);
    // h' = (1 - z) * n + z * h = n + z * (h - n)
    let hNext: Tensor;
    if (h) {
      const diff = h.sub(n);
      const scaled = z.mul(diff);
      hNext = n.add(scaled);
      release(diff, scaled);
    } else {
      const keepN = sub(1, z);
      hNext = keepN.mul(n);
      keepN.dispose();
    }
    release(x, xRz, xN, rz, n, z);
    outputs.push(hNext);
    h = hNext;
  }
  const output = stack(outputs, 0);
  release(...outputs);
  return output;
}
