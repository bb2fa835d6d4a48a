// Multi-head attention with torch.nn.MultiheadAttention's parameters, masks and return values.

import { scaledMaskedSoftmax } from '../ops/attention-softmax.js';
import { zeros } from '../ops/creation.js';
import { matmul } from '../ops/matmul.js';
import { dropout } from '../ops/nn.js';
import { checkTensor } from '../ops/util.js';
import { isFloating } from '../tensor/dtype.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { FactoryOptions, uniformTensor } from './init.js';
import { Linear, linear } from './linear.js';
import { Module, parameter } from './module.js';

export interface MultiheadAttentionOptions extends FactoryOptions {
  /** Inputs and output are [batch, seq, embedDim] instead of [seq, batch, embedDim] (default false). */
  batchFirst?: boolean;
  /** Dropout on the attention weights, in training mode (default 0). */
  dropout?: number;
  /** Adds inProjBias and outProj.bias (default true). */
  bias?: boolean;
}

export interface AttentionOptions {
  /**
   * A mask over [targetLength, sourceLength] or [batch * numHeads, targetLength, sourceLength]: bool, where
   * true marks a pair that may not attend, or floating point, added to the scores.
   */
  attnMask?: Tensor | null;
  /** [batch, sourceLength] ([sourceLength] unbatched): bool, where true marks a key to ignore, or floating point, added. */
  keyPaddingMask?: Tensor | null;
  /** Also masks every key after the query's position (key j > query i), for autoregressive models. */
  isCausal?: boolean;
  /** Return the attention weights (default true); false returns null in their place. */
  needWeights?: boolean;
  /** Average the returned weights over heads (default true); false returns one map per head. */
  averageAttnWeights?: boolean;
}

/**
 * Attention(Q, K, V) = softmax(Q K^T / sqrt(headDim) + masks) V in numHeads heads of embedDim / numHeads
 * features, between an input projection and an output projection, as torch.nn.MultiheadAttention.
 * Parameters map one to one to torch's: inProjWeight [3 * embedDim, embedDim] (rows for q, k, v) <->
 * in_proj_weight, inProjBias <-> in_proj_bias, outProj.weight and outProj.bias <-> out_proj.*.
 * NOTE: a query whose keys are all masked gets NaN, as in torch 1.13.
 */
export class MultiheadAttention extends Module {
  inProjWeight: Tensor;
  inProjBias: Tensor | null;
  outProj: Linear;
  readonly headDim: number;
  readonly batchFirst: boolean;
  readonly dropout: number;

  constructor(readonly embedDim: number, readonly numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    for (const [name, value] of Object.entries({ embedDim, numHeads })) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`MultiheadAttention: ${name} must be a positive integer, got ${value}`);
    }
    if (embedDim % numHeads !== 0) {
      throw new RangeError(`MultiheadAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    }
    const p = options.dropout ?? 0;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`MultiheadAttention: dropout must be between 0 and 1, got ${p}`);
    this.headDim = embedDim / numHeads;
    this.batchFirst = options.batchFirst ?? false;
    this.dropout = p;
    const bias = options.bias ?? true;
    const factory = { dtype: options.dtype, device: options.device };

    // torch's initialization: Xavier-uniform in-projection (fanIn embedDim, fanOut 3 * embedDim), zero
    // biases, and the output projection's weight as any Linear.
    this.inProjWeight = parameter(uniformTensor([3 * embedDim, embedDim], Math.sqrt(6 / (4 * embedDim)), factory));
    this.inProjBias = bias ? parameter(zeros([3 * embedDim], factory)) : null;
    this.outProj = new Linear(embedDim, embedDim, { ...factory, bias });
    if (this.outProj.bias) this.outProj.bias = parameter(zeros([embedDim], factory));
  }

  /**
   * query [L, N, E], key and value [S, N, E] ([N, L, E] and [N, S, E] with batchFirst; [L, E] and [S, E]
   * unbatched). Returns [output shaped as query, weights [N, L, S] (or [N, numHeads, L, S]) or null].
   */
  forward(query: Tensor, key: Tensor, value: Tensor, options: AttentionOptions = {}): [Tensor, Tensor | null] {
    const shapes = this.checkInputs(query, key, value);
    const { batched, batch, targetLength, sourceLength } = shapes;
    // Work on batched tensors; an unbatched input gains a batch dim of 1 and loses it at the end.
    const batchDim = this.batchFirst ? 0 : 1;
    const inputs = [query, key, value].map((t) => (batched ? t : t.unsqueeze(batchDim)));
    const [q, k, v] = this.project(inputs[0], inputs[1], inputs[2], query === key, key === value);
    if (!batched) inputs.forEach((t) => t.dispose());

    // scores [N, h, L, S] = q k^T. The scale 1 / sqrt(d), the masks and the softmax then run as one kernel,
    // which takes the causal mask from indices and reads the masks broadcast, so no [N, h, L, S] mask is built.
    const kt = k.transpose(-1, -2);
    const scores = matmul(q, kt);
    for (const t of [q, kt, k]) t.dispose();
    const masks = this.shapeMasks(options, batch, batched, targetLength, sourceLength);
    let weights = scaledMaskedSoftmax(scores, { scale: 1 / Math.sqrt(this.headDim), causal: options.isCausal ?? false, mask: masks });
    for (const t of [scores, ...masks]) t.dispose();
    if (this.training && this.dropout > 0) {
      const dropped = dropout(weights, this.dropout, true);
      weights.dispose();
      weights = dropped;
    }
    const heads = matmul(weights, v);
    v.dispose();

    // [N, h, L, d] back to the input layout [N, L, E] or [L, N, E], then the output projection.
    const order = this.batchFirst ? [0, 2, 1, 3] : [2, 0, 1, 3];
    const moved = heads.permute(order);
    const merged = moved.reshape(this.batchFirst ? [batch, targetLength, this.embedDim] : [targetLength, batch, this.embedDim]);
    const projected = this.outProj.forward(merged);
    for (const t of [heads, moved, merged]) t.dispose();
    const output = batched ? projected : projected.squeeze(batchDim);
    if (output !== projected) projected.dispose();

    const returned = this.attentionWeights(weights, options, batched);
    if (returned !== weights) weights.dispose();
    return [output, returned];
  }

  private checkInputs(query: Tensor, key: Tensor, value: Tensor): { batched: boolean; batch: number; targetLength: number; sourceLength: number } {
    const op = 'MultiheadAttention';
    checkTensor(op, query, 'query');
    checkTensor(op, key, 'key');
    checkTensor(op, value, 'value');
    if (!isFloating(query.dtype)) throw new TypeError(`${op}: expects floating-point inputs, got ${query.dtype}`);
    const rank = query.ndim;
    if (rank !== 2 && rank !== 3) throw new Error(`${op}: query must be 3-D (batched) or 2-D (unbatched), got shape ${formatShape(query.shape)}`);
    for (const [name, t] of [['key', key], ['value', value]] as const) {
      if (t.ndim !== rank) throw new Error(`${op}: ${name} of shape ${formatShape(t.shape)} must have the rank of query ${formatShape(query.shape)}`);
    }
    for (const [name, t] of [['query', query], ['key', key], ['value', value]] as const) {
      if (t.shape[rank - 1] !== this.embedDim) {
        throw new Error(`${op}: ${name} of shape ${formatShape(t.shape)} must end in embedDim ${this.embedDim}; keys and values of another width are not supported`);
      }
    }
    const seqDim = rank === 3 && this.batchFirst ? 1 : 0;
    const batchDim = this.batchFirst ? 0 : 1;
    const batch = rank === 2 ? 1 : query.shape[batchDim];
    if (rank === 3 && (key.shape[batchDim] !== batch || value.shape[batchDim] !== batch)) {
      throw new Error(`${op}: query, key and value must share the batch size, got shapes ${formatShape(query.shape)}, ${formatShape(key.shape)} and ${formatShape(value.shape)}${this.batchFirst ? '' : ' (batch is dim 1; pass batchFirst: true for [batch, seq, embedDim])'}`);
    }
    if (key.shape[seqDim] !== value.shape[seqDim]) {
      throw new Error(`${op}: key ${formatShape(key.shape)} and value ${formatShape(value.shape)} must have the same sequence length`);
    }
    return { batched: rank === 3, batch, targetLength: query.shape[seqDim], sourceLength: key.shape[seqDim] };
  }

  /**
   * Computes the in-projections as [N, h, seq, d] views. One matmul covers q, k and v for self-attention
   * (and k and v when they are one tensor), reading row blocks of inProjWeight.
   */
  private project(query: Tensor, key: Tensor, value: Tensor, queryIsKey: boolean, keyIsValue: boolean): Tensor[] {
    if (queryIsKey && keyIsValue) return this.projectParts(query, 0, 3);
    const [q] = this.projectParts(query, 0, 1);
    if (keyIsValue) return [q, ...this.projectParts(key, 1, 2)];
    return [q, ...this.projectParts(key, 1, 1), ...this.projectParts(value, 2, 1)];
  }

  /** Projects x with `count` row blocks of inProjWeight starting at block `first`; one [N, h, seq, d] view per block. */
  private projectParts(x: Tensor, first: number, count: number): Tensor[] {
    const E = this.embedDim;
    const weight = this.inProjWeight.narrow(0, first * E, count * E);
    const bias = this.inProjBias?.narrow(0, first * E, count * E) ?? null;
    const projected = linear(x, weight, bias);
    weight.dispose();
    bias?.dispose();
    const [a, b] = x.shape;
    const split = projected.reshape([a, b, count, this.numHeads, this.headDim]);
    projected.dispose();
    const order = this.batchFirst ? [0, 2, 1, 3] : [1, 2, 0, 3];
    const parts = Array.from({ length: count }, (_, j) => {
      const block = split.narrow(2, j, 1);
      const squeezed = block.squeeze(2);
      const heads = squeezed.permute(order);
      block.dispose();
      squeezed.dispose();
      return heads;
    });
    split.dispose();
    return parts;
  }

  /**
   * Checks attnMask and keyPaddingMask and returns them as new handles that broadcast to the scores [N, h, L, S]:
   * attnMask as [L, S] or [N, h, L, S], keyPaddingMask as [N, 1, 1, S].
   */
  private shapeMasks(options: AttentionOptions, batch: number, batched: boolean, L: number, S: number): Tensor[] {
    const op = 'MultiheadAttention';
    const checkDType = (mask: Tensor, name: string): void => {
      if (mask.dtype !== 'bool' && !isFloating(mask.dtype)) {
        throw new TypeError(`${op}: ${name} must be bool (true = masked) or floating point (added to the scores), got ${mask.dtype}`);
      }
    };
    const masks: Tensor[] = [];

    if (options.attnMask) {
      const mask = checkTensor(op, options.attnMask, 'attnMask');
      const flat = [L, S];
      const perHead = [batch * this.numHeads, L, S];
      const fits = (shape: number[]) => mask.shape.length === shape.length && mask.shape.every((d, i) => d === shape[i]);
      if (!fits(flat) && !fits(perHead)) {
        throw new Error(`${op}: attnMask must have shape ${formatShape(flat)} or ${formatShape(perHead)}, got ${formatShape(mask.shape)}`);
      }
      checkDType(mask, 'attnMask');
      masks.push(mask.reshape(mask.ndim === 3 ? [batch, this.numHeads, L, S] : flat));
    }
    if (options.keyPaddingMask) {
      const mask = checkTensor(op, options.keyPaddingMask, 'keyPaddingMask');
      const expected = batched ? [batch, S] : [S];
      if (mask.shape.length !== expected.length || mask.shape.some((d, i) => d !== expected[i])) {
        throw new Error(`${op}: keyPaddingMask must have shape ${formatShape(expected)} (${batched ? 'batch, ' : ''}source length), got ${formatShape(mask.shape)}`);
      }
      checkDType(mask, 'keyPaddingMask');
      masks.push(mask.reshape([batch, 1, 1, S]));
    }
    return masks;
  }

  private attentionWeights(weights: Tensor, options: AttentionOptions, batched: boolean): Tensor | null {
    if (options.needWeights === false) return null;
    const perQuery = (options.averageAttnWeights ?? true) ? weights.mean(1) : weights;
    if (batched) return perQuery;
    const out = perQuery.squeeze(0);
    if (perQuery !== weights) perQuery.dispose();
    return out;
  }
}
