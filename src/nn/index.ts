// fg.nn: layers and their functional forms.

export * as functional from './functional.js';
export { Module, parameter } from './module.js';
export type { StateDict, LoadStateDictOptions, LoadStateDictResult } from './module.js';
export * as init from './init.js';
export type { FactoryOptions } from './init.js';
export * as utils from './utils.js';
export { Sequential, ModuleList } from './containers.js';
export { Linear } from './linear.js';
export type { LinearOptions } from './linear.js';
export { Embedding } from './embedding.js';
export type { EmbeddingOptions } from './embedding.js';
export { Dropout } from './dropout.js';
export { GELU, ReLU, Tanh, Sigmoid } from './activation.js';
export type { GeluOptions } from './activation.js';
export { MultiheadAttention } from './attention.js';
export type { MultiheadAttentionOptions, AttentionOptions } from './attention.js';
export { LayerNorm } from './layernorm.js';
export type { LayerNormOptions } from './layernorm.js';
export { TransformerBlock } from './transformer.js';
export type { TransformerBlockOptions, TransformerBlockForwardOptions } from './transformer.js';
export { RNN, LSTM, GRU, RNN_LAYER_NORM_EPS } from './rnn.js';
export type { RnnBaseOptions, RnnOptions, GatedRnnOptions } from './rnn.js';
