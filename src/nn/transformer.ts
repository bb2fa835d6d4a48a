// A pre-LayerNorm transformer block with causal self-attention, as in GPT-2.

import { Tensor } from '../tensor/tensor.js';
import { checkTensor } from '../ops/util.js';
import { formatShape } from '../tensor/shape.js';
import { GELU } from './activation.js';
import { MultiheadAttention } from './attention.js';
import { Sequential } from './containers.js';
import { Dropout } from './dropout.js';
import { FactoryOptions } from './init.js';
import { LayerNorm } from './layernorm.js';
import { Linear } from './linear.js';
import { linear } from '../ops/linear.js';
import { Module } from './module.js';

export interface TransformerBlockOptions extends FactoryOptions {
  /** Width of the MLP's hidden layer as a multiple of dim (default 4). */
  mlpRatio?: number;
  /** Dropout on the attention weights and on both residual branches, in training mode (default 0). */
  dropout?: number;
}

export interface TransformerBlockForwardOptions {
  /** Masks future positions (default true); false gives bidirectional self-attention. */
  isCausal?: boolean;
  /** [batch, seq] bool, true marks a padding position that no query may attend to. */
  keyPaddingMask?: Tensor | null;
}

/**
 * x = x + dropout(attn(ln1(x))) with causal self-attention, then x = x + dropout(mlp(ln2(x))) where mlp is
 * Linear(dim, mlpRatio * dim), GELU, Linear(mlpRatio * dim, dim). Input and output are [batch, seq, dim]
 * ([seq, dim] unbatched). Parameter names: ln1.*, attn.inProjWeight, attn.inProjBias, attn.outProj.*,
 * ln2.*, mlp.0.* and mlp.2.*.
 */
export class TransformerBlock extends Module {
  ln1: LayerNorm;
  attn: MultiheadAttention;
  ln2: LayerNorm;
  mlp: Sequential;
  residualDropout: Dropout;

  constructor(readonly dim: number, readonly numHeads: number, options: TransformerBlockOptions = {}) {
    super();
    const mlpRatio = options.mlpRatio ?? 4;
    const hidden = Math.round(mlpRatio * dim);
    if (!(mlpRatio > 0) || hidden < 1) throw new RangeError(`TransformerBlock: mlpRatio must be positive, got ${mlpRatio}`);
    const p = options.dropout ?? 0;
    const factory = { dtype: options.dtype, device: options.device };
    this.ln1 = new LayerNorm(dim, factory);
    this.attn = new MultiheadAttention(dim, numHeads, { ...factory, batchFirst: true, dropout: p });
    this.ln2 = new LayerNorm(dim, factory);
    this.mlp = new Sequential(new Linear(dim, hidden, factory), new GELU(), new Linear(hidden, dim, factory));
    this.residualDropout = new Dropout(p);
  }

  forward(x: Tensor, options: TransformerBlockForwardOptions = {}): Tensor {
    checkTensor('TransformerBlock', x);
    if ((x.ndim !== 2 && x.ndim !== 3) || x.shape[x.ndim - 1] !== this.dim) {
      throw new Error(`TransformerBlock: expected input of shape [batch, seq, ${this.dim}] or [seq, ${this.dim}], got ${formatShape(x.shape)}`);
    }
    const h1 = this.ln1.forward(x);
    const [attended] = this.attn.forward(h1, h1, h1, {
      isCausal: options.isCausal ?? true, keyPaddingMask: options.keyPaddingMask, needWeights: false,
    });
    const attnOut = this.residualDropout.forward(attended);
    const mid = x.add(attnOut);
    for (const t of [h1, attended, attnOut]) t.dispose();

    const h2 = this.ln2.forward(mid);
    const mlpRaw = this.mlpForward(h2);
    const mlpOut = this.residualDropout.forward(mlpRaw);
    const out = mid.add(mlpOut);
    for (const t of [mid, h2, mlpRaw, mlpOut]) t.dispose();
    return out;
  }

  /**
   * Runs the MLP, with its first Linear and the GELU in one fused op. A user who replaced a layer in this.mlp
   * gets the plain Sequential forward instead.
   */
  private mlpForward(h: Tensor): Tensor {
    const [fc1, act, fc2] = this.mlp;
    if (this.mlp.length !== 3 || !(fc1 instanceof Linear) || !(act instanceof GELU) || !(fc2 instanceof Linear)) return this.mlp.forward(h);
    const hidden = linear(h, fc1.weight, fc1.bias, act.approximate === 'tanh' ? 'geluTanh' : 'gelu');
    const out = fc2.forward(hidden);
    hidden.dispose();
    return out;
  }
}
