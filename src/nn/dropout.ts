// Dropout: zeroes elements with probability p while training and scales the rest by 1 / (1 - p).

import { dropout } from '../ops/nn.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`Dropout: probability p must be between 0 and 1, got ${p}`);
  }

  /** Draws the mask from the seeded generator (fg.manualSeed) in training mode; in eval mode returns a copy of x. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}
