// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, as torch.optim.SGD.

import type { Tensor } from '../tensor/tensor.js';
import { sgdUpdate, SgdSlot } from './functional.js';
import { Optimizer, ParamGroup, ParamsInput, checkBoolean, checkNonNegative } from './optimizer.js';

export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** L2 penalty: adds weightDecay * param to the gradient. */
  weightDecay: number;
  /** Maximize the objective instead of minimizing it. */
  maximize: boolean;
}

export class SGD extends Optimizer<SgdOptions> {
  /** `lr` is required, as in PyTorch; the other options default to 0 and false. */
  constructor(params: ParamsInput<SgdOptions>, options: Partial<SgdOptions> & { lr: number }) {
    if (options === undefined || options.lr === undefined) {
      throw new TypeError('SGD: options.lr is required, for example new fg.optim.SGD(model.parameters(), { lr: 0.1 })');
    }
    super('SGD', params, { lr: options.lr, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, maximize: false }, options);
  }

  protected validate(h: SgdOptions): void {
    checkNonNegative('SGD', 'lr', h.lr);
    checkNonNegative('SGD', 'momentum', h.momentum);
    checkNonNegative('SGD', 'dampening', h.dampening);
    checkNonNegative('SGD', 'weightDecay', h.weightDecay);
    checkBoolean('SGD', 'nesterov', h.nesterov);
    checkBoolean('SGD', 'maximize', h.maximize);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      throw new RangeError(`SGD: Nesterov momentum requires momentum > 0 and dampening 0, got momentum ${h.momentum} and dampening ${h.dampening}`);
    }
  }

  protected updateGroup(group: ParamGroup<SgdOptions>, params: Tensor[]): void {
    const slots: SgdSlot[] = params.map((param) => {
      const buffer = this.state.get(param)?.momentumBuffer;
      return { param, grad: param.grad!, momentumBuffer: buffer === undefined ? null : (buffer as Tensor) };
    });
    sgdUpdate(slots, group);
    if (group.momentum === 0) return;
    for (const slot of slots) this.state.set(slot.param, { momentumBuffer: slot.momentumBuffer! });
  }
}
