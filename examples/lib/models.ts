// The character-level language models of the examples: a small GPT (pre-LN causal Transformer) and
// recurrent models (RNN, LSTM, GRU). Both map token ids [batch, seq] to logits [batch, seq, vocab].

import * as fg from '../../src/index.js';

export type ModelKind = 'gpt' | 'lstm' | 'gru' | 'rnn';
export const MODEL_KINDS: readonly ModelKind[] = ['gpt', 'lstm', 'gru', 'rnn'];

/** The hyperparameters that define a model; config.json stores them with the vocabulary. */
export interface ModelConfig {
  model: ModelKind;
  vocabSize: number;
  /** The maximum input length of the GPT (the size of its position table); the training window of the RNNs. */
  context: number;
  /** Embedding width (GPT) or hidden size (RNNs). */
  dim: number;
  layers: number;
  /** Attention heads (GPT only). */
  heads: number;
  dropout: number;
}

/** A language model: forward maps token ids [batch, seq] to logits [batch, seq, vocab]. */
export interface LanguageModel extends fg.nn.Module {
  readonly config: ModelConfig;
  forward(inputs: fg.Tensor): fg.Tensor;
}

export type RecurrentState = fg.Tensor | [fg.Tensor, fg.Tensor];

/** A GPT: token and position embeddings, pre-LN causal Transformer blocks, a final LayerNorm and a linear head. */
export class CharTransformer extends fg.nn.Module implements LanguageModel {
  tokenEmbedding: fg.nn.Embedding;
  positionEmbedding: fg.nn.Embedding;
  blocks: fg.nn.ModuleList;
  norm: fg.nn.LayerNorm;
  head: fg.nn.Linear;

  /** `device` is where the parameters live (the default device unless given). */
  constructor(readonly config: ModelConfig, device?: fg.DeviceName) {
    super();
    const { vocabSize, context, dim, layers, heads, dropout } = config;
    const on = { device };
    if (dim % heads !== 0) throw new Error(`the model dimension ${dim} must be divisible by the number of heads ${heads}`);
    this.tokenEmbedding = new fg.nn.Embedding(vocabSize, dim, on);
    this.positionEmbedding = new fg.nn.Embedding(context, dim, on);
    this.blocks = new fg.nn.ModuleList(Array.from({ length: layers }, () => new fg.nn.TransformerBlock(dim, heads, { dropout, ...on })));
    this.norm = new fg.nn.LayerNorm(dim, on);
    this.head = new fg.nn.Linear(dim, vocabSize, on);
    initializeGpt(this);
  }

  forward(inputs: fg.Tensor): fg.Tensor {
    const seq = inputs.shape[1];
    if (seq > this.config.context) throw new Error(`the input has ${seq} tokens, more than the context of ${this.config.context}`);
    const positions = fg.arange(0, seq, 1, { device: inputs.device });
    let x = this.tokenEmbedding.forward(inputs).add(this.positionEmbedding.forward(positions));
    for (const block of this.blocks) x = (block as fg.nn.TransformerBlock).forward(x);
    return this.head.forward(this.norm.forward(x));
  }
}

/**
 * GPT-2's initialization: every Linear and Embedding weight from N(0, 0.02), biases zero. Small initial
 * logits keep the first loss near ln(vocab) and make the first steps stable.
 */
function initializeGpt(model: fg.nn.Module): void {
  for (const p of model.parameters()) {
    if (p.ndim < 2) continue;
    fg.nn.init.normal_(p, 0, 0.02);
  }
}

const RECURRENT = { lstm: fg.nn.LSTM, gru: fg.nn.GRU, rnn: fg.nn.RNN } as const;

/** An embedding, a stacked RNN, LSTM or GRU (batch first) and a linear head. */
export class CharRecurrent extends fg.nn.Module implements LanguageModel {
  embedding: fg.nn.Embedding;
  rnn: fg.nn.RNN | fg.nn.LSTM | fg.nn.GRU;
  head: fg.nn.Linear;

  /** `device` is where the parameters live (the default device unless given). */
  constructor(readonly config: ModelConfig, device?: fg.DeviceName) {
    super();
    const { vocabSize, dim, layers, dropout } = config;
    const on = { device };
    if (config.model === 'gpt') throw new Error('CharRecurrent: use CharTransformer for gpt');
    this.embedding = new fg.nn.Embedding(vocabSize, dim, on);
    this.rnn = new RECURRENT[config.model](dim, dim, { numLayers: layers, batchFirst: true, dropout: layers > 1 ? dropout : 0, ...on });
    this.head = new fg.nn.Linear(dim, vocabSize, on);
  }

  forward(inputs: fg.Tensor): fg.Tensor {
    return this.forwardWithState(inputs, null)[0];
  }

  /** Runs from `state` (zeros when null) and returns the logits and the final state, for generation one token at a time. */
  forwardWithState(inputs: fg.Tensor, state: RecurrentState | null): [fg.Tensor, RecurrentState] {
    const embedded = this.embedding.forward(inputs);
    const run = this.rnn.forward.bind(this.rnn) as (x: fg.Tensor, s: RecurrentState | null) => [fg.Tensor, RecurrentState];
    const [output, next] = run(embedded, state);
    return [this.head.forward(output), next];
  }
}

export function buildModel(config: ModelConfig, device?: fg.DeviceName): LanguageModel {
  return config.model === 'gpt' ? new CharTransformer(config, device) : new CharRecurrent(config, device);
}

/** Counts the trainable values of a model. */
export function countParameters(model: fg.nn.Module): number {
  return model.parameters().reduce((total, p) => total + p.numel, 0);
}
