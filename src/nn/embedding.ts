// Embedding: a lookup table of learnable rows, as torch.nn.Embedding.

import { noGrad } from '../runtime.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { where } from '../ops/elementwise.js';
import { embedding } from '../ops/nn.js';
import { randn } from '../ops/creation.js';
import { checkTensor } from '../ops/util.js';
import { FactoryOptions } from './init.js';
import { checkFeatures } from './linear.js';
import { Module, parameter } from './module.js';

export interface EmbeddingOptions extends FactoryOptions {
  /** A row that starts at zero and gets no gradient (for padding tokens); negative values count from the end. */
  paddingIdx?: number;
}

/** Maps int32 indices of any shape to rows of weight ([numEmbeddings, embeddingDim]), initialized from N(0, 1). */
export class Embedding extends Module {
  weight: Tensor;
  readonly paddingIdx: number | null;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, options: EmbeddingOptions = {}) {
    super();
    checkFeatures('Embedding', { numEmbeddings, embeddingDim });
    this.paddingIdx = normalizePaddingIdx(options.paddingIdx, numEmbeddings);
    const weight = randn([numEmbeddings, embeddingDim], options);
    if (this.paddingIdx !== null) {
      const row = weight.narrow(0, this.paddingIdx, 1);
      noGrad(() => row.fill_(0));
      row.dispose();
    }
    this.weight = parameter(weight);
  }

  forward(indices: Tensor): Tensor {
    return embeddingWithPadding(indices, this.weight, this.paddingIdx);
  }
}

function normalizePaddingIdx(paddingIdx: number | undefined, numEmbeddings: number): number | null {
  if (paddingIdx === undefined || paddingIdx === null) return null;
  if (!Number.isInteger(paddingIdx) || paddingIdx < -numEmbeddings || paddingIdx >= numEmbeddings) {
    throw new RangeError(`Embedding: paddingIdx ${paddingIdx} must be an integer within numEmbeddings ${numEmbeddings} (from ${-numEmbeddings} to ${numEmbeddings - 1})`);
  }
  return paddingIdx < 0 ? paddingIdx + numEmbeddings : paddingIdx;
}

/**
 * Looks up rows of weight, as torch.nn.functional.embedding with padding_idx. Positions whose index equals
 * paddingIdx return that row as it is but pass no gradient to it.
 */
export function embeddingWithPadding(indices: Tensor, weight: Tensor, paddingIdx: number | null): Tensor {
  checkTensor('Embedding', indices, 'indices');
  if (indices.dtype !== 'int32') {
    throw new TypeError(`Embedding: indices must be an int32 tensor, got ${indices.dtype} of shape ${formatShape(indices.shape)}; create them with { dtype: 'int32' }`);
  }
  const rows = embedding(indices, weight);
  if (paddingIdx === null || !rows.requiresGrad) return rows;

  // where(isPadding, rows.detach(), rows) keeps the values and stops the gradient at padding positions.
  const isPadding = indices.eq(paddingIdx);
  const mask = isPadding.unsqueeze(-1);
  const frozen = rows.detach();
  const out = where(mask, frozen, rows);
  for (const t of [isPadding, mask, frozen, rows]) t.dispose();
  return out;
}
