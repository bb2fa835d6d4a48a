// Activation layers: GELU, ReLU, Tanh and Sigmoid, each a module around its elementwise op.

import { gelu, relu, sigmoid, tanh } from '../ops/elementwise.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export interface GeluOptions {
  /** 'none' (default) for x * Phi(x) exactly, 'tanh' for the tanh approximation. */
  approximate?: 'none' | 'tanh';
}

export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';

  constructor(options: GeluOptions = {}) {
    super();
    const approximate = options.approximate ?? 'none';
    if (approximate !== 'none' && approximate !== 'tanh') {
      throw new TypeError(`GELU: approximate must be 'none' or 'tanh', got ${JSON.stringify(approximate)}`);
    }
    this.approximate = approximate;
  }

  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}
