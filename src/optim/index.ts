// fg.optim, as torch.optim: optimizers and learning-rate schedules.

export { Optimizer } from './optimizer.js';
export type { OptimizerStateDict, SavedParamGroup, ParamGroup, ParamGroupInput, ParamsInput, ParamState, HyperValue } from './optimizer.js';
export { SGD } from './sgd.js';
export type { SgdOptions } from './sgd.js';
export { Adam, AdamW } from './adam.js';
export type { AdamOptions } from './adam.js';
export { LRScheduler, StepLR, WarmupCosineLR } from './lr-scheduler.js';
export type { SchedulerStateDict, WarmupCosineOptions } from './lr-scheduler.js';
