// fg.nn: layers and their functional forms.

export * as functional from './functional.js';
export { Module, parameter } from './module.js';
export type { StateDict, LoadStateDictOptions, LoadStateDictResult } from './module.js';
