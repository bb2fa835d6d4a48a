// The models of the training-step benchmarks: the example character models (examples/train.ts) at their
// default size, built here from fg.nn so that the benchmark and its TF.js port share one definition.

import * as fg from '../src/index.js';

export interface ModelShape {
  vocabSize: number;
  /** Tokens per sequence; also the GPT's position table. */
  context: number;
  /** Embedding width (GPT) or hidden size (LSTM). */
  dim: number;
  layers: number;
  /** Attention heads (GPT only). */
  heads: number;
  /** Sequences per training step. */
  batch: number;
}

/** The example GPT's default size with a 65-character vocabulary. */
export const GPT_SHAPE: ModelShape = { vocabSize: 65, context: 64, dim: 64, layers: 2, heads: 4, batch: 32 };

export interface LanguageModel extends fg.nn.Module {
  /** Maps token ids [batch, seq] to logits [batch, seq, vocab]. */
  forward(inputs: fg.Tensor): fg.Tensor;
}

/**
 * A pre-LN GPT: token and position embeddings, causal TransformerBlocks (MLP width 4 * dim, GELU), a final
 * LayerNorm and a linear head. Matrix weights start from N(0, 0.02) as in GPT-2, with no dropout.
 */
export class Gpt extends fg.nn.Module implements LanguageModel {
  tokenEmbedding: fg.nn.Embedding;
  positionEmbedding: fg.nn.Embedding;
  blocks: fg.nn.TransformerBlock[];
  norm: fg.nn.LayerNorm;
  head: fg.nn.Linear;

  constructor(shape: ModelShape) {
    super();
    this.tokenEmbedding = new fg.nn.Embedding(shape.vocabSize, shape.dim);
    this.positionEmbedding = new fg.nn.Embedding(shape.context, shape.dim);
    this.blocks = Array.from({ length: shape.layers }, () => new fg.nn.TransformerBlock(shape.dim, shape.heads));
    this.norm = new fg.nn.LayerNorm(shape.dim);
    this.head = new fg.nn.Linear(shape.dim, shape.vocabSize);
    for (const p of this.parameters()) {
      if (p.ndim >= 2) fg.nn.init.normal_(p, 0, 0.02);
    }
  }

  forward(inputs: fg.Tensor): fg.Tensor {
    const positions = fg.arange(0, inputs.shape[1], 1, { device: inputs.device });
    let x = this.tokenEmbedding.forward(inputs).add(this.positionEmbedding.forward(positions));
    for (const block of this.blocks) x = block.forward(x);
    return this.head.forward(this.norm.forward(x));
  }
}

/** An embedding, a stacked batch-first LSTM and a linear head. */
export class LstmModel extends fg.nn.Module implements LanguageModel {
  embedding: fg.nn.Embedding;
  lstm: fg.nn.LSTM;
  head: fg.nn.Linear;

  constructor(shape: ModelShape) {
    super();
    this.embedding = new fg.nn.Embedding(shape.vocabSize, shape.dim);
    this.lstm = new fg.nn.LSTM(shape.dim, shape.dim, { numLayers: shape.layers, batchFirst: true });
    this.head = new fg.nn.Linear(shape.dim, shape.vocabSize);
  }

  forward(inputs: fg.Tensor): fg.Tensor {
    const [output] = this.lstm.forward(this.embedding.forward(inputs));
    return this.head.forward(output);
  }
}
