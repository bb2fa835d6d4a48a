// Every op, in one namespace for the Tensor methods and the package root.

export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './linear.js';
export * from './convert.js';
export * from './creation.js';
export * from './nn.js';
export * from './cross-entropy.js';
export * from './layernorm.js';
export * from './attention-softmax.js';
