// fg.nn.functional, as torch.nn.functional: stateless layers and losses.

export { softmax, logSoftmax, gelu, dropout, embedding, mseLoss } from '../ops/nn.js';
export type { Reduction } from '../ops/nn.js';
export { crossEntropy } from '../ops/cross-entropy.js';
export type { CrossEntropyOptions } from '../ops/cross-entropy.js';
export { layerNorm } from '../ops/layernorm.js';
export { linear } from './linear.js';
