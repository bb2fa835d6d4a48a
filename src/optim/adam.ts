// Adam (with the optional AMSGrad variant) and AdamW, as torch.optim.Adam and torch.optim.AdamW.

import { zerosLike } from '../ops/creation.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { AdamSlot, adamUpdate } from './functional.js';
import { Optimizer, ParamGroup, ParamsInput, checkBoolean, checkNonNegative } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  /** Decay rates of the first and second moment estimates. */
  betas: readonly [number, number];
  /** Added to the denominator for numerical stability. */
  eps: number;
  /** Adam: an L2 penalty added to the gradient. AdamW: the decoupled decay rate (param *= 1 - lr * weightDecay). */
  weightDecay: number;
  /** Use the running maximum of the second moment (AMSGrad). */
  amsgrad: boolean;
  /** Maximize the objective instead of minimizing it. */
  maximize: boolean;
}

const ADAM_DEFAULTS: AdamOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false };

abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  protected validate(h: AdamOptions): void {
    const name = this.name;
    checkNonNegative(name, 'lr', h.lr);
    checkNonNegative(name, 'eps', h.eps);
    checkNonNegative(name, 'weightDecay', h.weightDecay);
    checkBoolean(name, 'amsgrad', h.amsgrad);
    checkBoolean(name, 'maximize', h.maximize);
    if (!Array.isArray(h.betas) || h.betas.length !== 2 || h.betas.some((b) => typeof b !== 'number' || !(b >= 0 && b < 1))) {
      throw new RangeError(`${name}: betas must be two numbers in [0, 1), got ${JSON.stringify(h.betas)}`);
    }
  }

  protected updateGroup(group: ParamGroup<AdamOptions>, params: Tensor[]): void {
    const slots: AdamSlot[] = params.map((param) => {
      const state = this.state.get(param);
      const fresh = () => keep(zerosLike(param));
      return {
        param,
        grad: param.grad!,
        step: ((state?.step as number | undefined) ?? 0) + 1,
        expAvg: (state?.expAvg as Tensor | undefined) ?? fresh(),
        expAvgSq: (state?.expAvgSq as Tensor | undefined) ?? fresh(),
        maxExpAvgSq: (state?.maxExpAvgSq as Tensor | undefined) ?? null,
      };
    });
    adamUpdate(slots, {
      lr: group.lr,
      beta1: group.betas[0],
      beta2: group.betas[1],
      eps: group.eps,
      weightDecay: group.weightDecay,
      decoupled: this.decoupled,
      amsgrad: group.amsgrad,
      maximize: group.maximize,
    });
    for (const slot of slots) {
      const state: Record<string, Tensor | number> = { step: slot.step, expAvg: slot.expAvg, expAvgSq: slot.expAvgSq };
      if (slot.maxExpAvgSq) state.maxExpAvgSq = slot.maxExpAvgSq;
      this.state.set(slot.param, state);
    }
  }
}

/** Adam: lr 1e-3, betas [0.9, 0.999], eps 1e-8 and no weight decay by default, as in PyTorch. */
export class Adam extends AdamBase {
  protected readonly decoupled = false;

  constructor(params: ParamsInput<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super('Adam', params, ADAM_DEFAULTS, options);
  }
}

/** AdamW: Adam with decoupled weight decay, 0.01 by default, as in PyTorch. */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;

  constructor(params: ParamsInput<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super('AdamW', params, { ...ADAM_DEFAULTS, weightDecay: 1e-2 }, options);
  }
}
