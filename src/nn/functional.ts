// fg.nn.functional, as torch.nn.functional: stateless layers and losses.

export { softmax, logSoftmax, gelu, dropout, embedding, crossEntropy, mseLoss } from '../ops/nn.js';
export type { CrossEntropyOptions, Reduction } from '../ops/nn.js';
export { layerNorm } from '../ops/layernorm.js';
export { linear } from './linear.js';
