// Learning-rate schedules. As in torch.optim.lr_scheduler, a scheduler sets each group's lr for step 0
// when it is created, and each call to step() (once per optimizer step) moves to the next value.

export interface SchedulerStateDict {
  lastEpoch: number;
  baseLrs: number[];
}

/** Any optimizer: a scheduler only reads and sets each group's lr. */
interface LrOptimizer {
  paramGroups: { lr: number }[];
}

export abstract class LRScheduler {
  /** The number of step() calls so far (PyTorch's last_epoch). */
  lastEpoch = 0;
  /** Each group's lr when the scheduler was created. */
  readonly baseLrs: number[];
  private lastLrs: number[] = [];

  protected constructor(readonly optimizer: LrOptimizer) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
  }

  /** The lr of group `group` after `epoch` steps. */
  protected abstract lrAt(epoch: number, baseLr: number): number;

  /** Sets every group's lr for the current epoch; subclasses call it at the end of their constructor. */
  protected apply(): void {
    this.lastLrs = this.baseLrs.map((base, i) => {
      const lr = this.lrAt(this.lastEpoch, base);
      this.optimizer.paramGroups[i].lr = lr;
      return lr;
    });
  }

  /** Advances the schedule by one step. Call it after optimizer.step(). */
  step(): void {
    this.lastEpoch++;
    this.apply();
  }

  /** The lr of each group as last set by the scheduler. */
  getLastLr(): number[] {
    return [...this.lastLrs];
  }

  stateDict(): SchedulerStateDict {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs] };
  }

  /** Restores the position in the schedule and sets the groups' lr accordingly. */
  loadStateDict(state: SchedulerStateDict): void {
    if (!Number.isInteger(state?.lastEpoch) || state.lastEpoch < 0 || !Array.isArray(state.baseLrs) || state.baseLrs.length !== this.baseLrs.length) {
      throw new Error(`${this.constructor.name}.loadStateDict: expected { lastEpoch, baseLrs } with ${this.baseLrs.length} base lr values`);
    }
    this.lastEpoch = state.lastEpoch;
    this.baseLrs.splice(0, this.baseLrs.length, ...state.baseLrs);
    this.apply();
  }
}

function checkPositiveInteger(op: string, name: string, value: unknown): void {
  if (!Number.isInteger(value) || (value as number) <= 0) throw new RangeError(`${op}: ${name} must be a positive integer, got ${String(value)}`);
}

/** Multiplies the lr by gamma every stepSize steps: lr = baseLr * gamma^floor(epoch / stepSize), as torch's StepLR. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: LrOptimizer, options: { stepSize: number; gamma?: number }) {
    super(optimizer);
    checkPositiveInteger('StepLR', 'stepSize', options?.stepSize);
    const gamma = options.gamma ?? 0.1;
    if (typeof gamma !== 'number' || !Number.isFinite(gamma) || gamma < 0) throw new RangeError(`StepLR: gamma must be a finite number >= 0, got ${String(gamma)}`);
    this.stepSize = options.stepSize;
    this.gamma = gamma;
    this.apply();
  }

  protected lrAt(epoch: number, baseLr: number): number {
    return baseLr * this.gamma ** Math.floor(epoch / this.stepSize);
  }
}

export interface WarmupCosineOptions {
  /** Steps of linear warmup: the lr rises from baseLr / warmupSteps to baseLr. 0 skips the warmup. */
  warmupSteps: number;
  /** The step at which the cosine decay reaches minLr; the lr stays at minLr afterwards. */
  totalSteps: number;
  /** The final lr (default 0). */
  minLr?: number;
}

/**
 * Linear warmup, then cosine decay: lr = baseLr * (epoch + 1) / warmupSteps during the warmup, then
 * minLr + (baseLr - minLr) * (1 + cos(pi * progress)) / 2, where progress goes from 0 at the end of the
 * warmup to 1 at totalSteps.
 */
export class WarmupCosineLR extends LRScheduler {
  readonly warmupSteps: number;
  readonly totalSteps: number;
  readonly minLr: number;

  constructor(optimizer: LrOptimizer, options: WarmupCosineOptions) {
    super(optimizer);
    const { warmupSteps, totalSteps, minLr = 0 } = options ?? ({} as WarmupCosineOptions);
    if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new RangeError(`WarmupCosineLR: warmupSteps must be an integer >= 0, got ${String(warmupSteps)}`);
    checkPositiveInteger('WarmupCosineLR', 'totalSteps', totalSteps);
    if (warmupSteps > totalSteps) throw new RangeError(`WarmupCosineLR: warmupSteps (${warmupSteps}) must not exceed totalSteps (${totalSteps})`);
    if (typeof minLr !== 'number' || !Number.isFinite(minLr) || minLr < 0) throw new RangeError(`WarmupCosineLR: minLr must be a finite number >= 0, got ${String(minLr)}`);
    this.warmupSteps = warmupSteps;
    this.totalSteps = totalSteps;
    this.minLr = minLr;
    this.apply();
  }

  protected lrAt(epoch: number, baseLr: number): number {
    if (epoch < this.warmupSteps) return (baseLr * (epoch + 1)) / this.warmupSteps;
    const span = this.totalSteps - this.warmupSteps;
    const progress = span === 0 ? 1 : Math.min(1, (epoch - this.warmupSteps) / span);
    return this.minLr + ((baseLr - this.minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  }
}
