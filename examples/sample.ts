// Generates text from a model trained by npm run train: npm run sample -- --from DIR [--prompt TEXT]
// [--tokens N] [--temperature T] [--seed S] [--backend webgpu|cpu].

import seedrandom from 'seedrandom';
import { OptionSpec, UsageError, choice, finiteNumber, initBackend, nonNegativeInteger, parseOptions, positiveInteger, runMain, usage } from './lib/cli.js';
import { Tokenizer } from './lib/data.js';
import { generate } from './lib/generate.js';
import { buildModel } from './lib/models.js';
import { loadWeights, readRunConfig } from './lib/run-files.js';
import * as fg from '../src/index.js';

const SPECS: OptionSpec = {
  from: { type: 'string', help: 'the output folder of a training run (with config.json and model.safetensors)' },
  prompt: { type: 'string', help: 'text to continue; every character must be in the model\'s vocabulary', default: 'a newline' },
  tokens: { type: 'string', help: 'characters to generate', default: '500' },
  temperature: { type: 'string', help: 'softmax temperature: lower is more conservative, 0 always picks the most likely character', default: '0.8' },
  seed: { type: 'string', help: 'seed of the sampling', default: '1' },
  backend: { type: 'string', help: 'webgpu or cpu', default: 'webgpu' },
  help: { type: 'boolean', short: 'h', help: 'print this help' },
};

async function main(): Promise<void> {
  const values = parseOptions('sample', SPECS);
  if (values.help) {
    process.stdout.write(usage('sample', 'Generates text from a model trained by npm run train.', SPECS));
    return;
  }
  if (typeof values.from !== 'string') throw new UsageError('--from DIR is required: the output folder of npm run train (for example runs/gpt)');
  const tokens = positiveInteger('tokens', values.tokens, 500);
  const temperature = finiteNumber('temperature', values.temperature, 0.8, 0, 100);
  const seed = nonNegativeInteger('seed', values.seed, 1);
  const backend = choice('backend', values.backend, ['webgpu', 'cpu'] as const, 'webgpu');
  const prompt = typeof values.prompt === 'string' ? values.prompt : '';

  const config = readRunConfig(values.from, '--from');
  const tokenizer = new Tokenizer(config.vocabulary);
  tokenizer.encode(prompt, '--prompt');

  const device = await initBackend(backend);
  const model = buildModel(config.modelConfig, device);
  await loadWeights(values.from, model, device);
  const text = await generate(model, tokenizer, { prompt, tokens, temperature, random: seedrandom.alea(`sample-${seed}`) });
  process.stdout.write(`${text}\n`);
}

runMain(main);
