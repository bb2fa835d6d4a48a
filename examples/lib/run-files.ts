// The files of a training run's output folder: model.safetensors, optimizer.safetensors, config.json
// (vocabulary, model hyperparameters, training options and the step count) and metrics.json (loss history).

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fg from '../../src/index.js';
import { UsageError } from './cli.js';
import { MODEL_KINDS, ModelConfig } from './models.js';
import type { LossHistory } from './plot.js';

export const CONFIG_FORMAT = 'fusegrad-char-lm';
export const CONFIG_VERSION = 1;

/** The training options saved with a run, so that --resume continues with the same settings. */
export interface TrainingOptions {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  evalEvery: number;
  warmupSteps: number;
  weightDecay: number;
  clipNorm: number;
  data: string;
}

export interface RunConfig {
  format: typeof CONFIG_FORMAT;
  version: number;
  /** The characters of the vocabulary, in token-id order. */
  vocabulary: string[];
  modelConfig: ModelConfig;
  training: TrainingOptions;
  /** Optimizer steps taken so far. */
  step: number;
}

export interface Metrics {
  history: LossHistory;
  validationLoss: number | null;
  tokensPerSecond: number | null;
}

/** Writes a file through a temporary name in the same folder, so a crash never leaves it half-written. */
function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

export function ensureFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new UsageError(`--out ${dir}: cannot create the folder (${(error as Error).message})`);
  }
}

/** Saves the model, the optimizer state, config.json and metrics.json into `dir`. */
export async function saveRun(dir: string, model: fg.nn.Module, optimizer: { stateDict(): fg.optim.OptimizerStateDict }, config: RunConfig, metrics: Metrics): Promise<void> {
  await fg.save(model.stateDict(), join(dir, 'model.safetensors'), { metadata: { format: CONFIG_FORMAT, model: config.modelConfig.model } });
  await fg.save(optimizer.stateDict(), join(dir, 'optimizer.safetensors'));
  writeAtomically(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeAtomically(join(dir, 'metrics.json'), `${JSON.stringify(metrics)}\n`);
}

function readJson(path: string, what: string): unknown {
  if (!existsSync(path)) throw new UsageError(`${path} not found; ${what}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`${path} is not valid JSON (${(error as Error).message})`);
  }
}

/** Reads and checks config.json of a run folder. */
export function readRunConfig(dir: string, option: string): RunConfig {
  const hint = `${option} expects a folder written by npm run train (with config.json and model.safetensors)`;
  if (!existsSync(dir)) throw new UsageError(`${option} ${dir}: the folder does not exist; ${hint}`);
  const config = readJson(join(dir, 'config.json'), hint) as RunConfig;
  const model = config?.modelConfig;
  const valid = config?.format === CONFIG_FORMAT && Array.isArray(config.vocabulary) && config.vocabulary.every((c) => typeof c === 'string') &&
    model !== undefined && MODEL_KINDS.includes(model.model) && [model.vocabSize, model.context, model.dim, model.layers, model.heads].every((n) => Number.isInteger(n) && n > 0) &&
    model.vocabSize === config.vocabulary.length && Number.isInteger(config.step);
  if (!valid) throw new UsageError(`${join(dir, 'config.json')} is not a valid ${CONFIG_FORMAT} config; ${hint}`);
  if (config.version !== CONFIG_VERSION) throw new UsageError(`${join(dir, 'config.json')} has version ${config.version}, but this script reads version ${CONFIG_VERSION}`);
  return config;
}

export function readMetrics(dir: string): Metrics {
  const path = join(dir, 'metrics.json');
  if (!existsSync(path)) return { history: { train: [], validation: [] }, validationLoss: null, tokensPerSecond: null };
  return readJson(path, '') as Metrics;
}

/** Loads a checkpoint's weights into `model`, turning a missing or malformed file into a usage error. */
export async function loadWeights(dir: string, model: fg.nn.Module, device: fg.DeviceName): Promise<void> {
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path)) throw new UsageError(`${path} not found; the folder has a config.json but no weights`);
  let state: Record<string, fg.Tensor>;
  try {
    state = await fg.load(path, { device });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  try {
    model.loadStateDict(state);
  } catch (error) {
    throw new UsageError(`${path} does not fit the model in config.json: ${(error as Error).message}`);
  } finally {
    for (const t of Object.values(state)) t.dispose();
  }
}
