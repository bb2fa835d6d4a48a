// Text generation: sample one character at a time from the model's softmax at a temperature.

import * as fg from '../../src/index.js';
import { Tokenizer } from './data.js';
import { CharRecurrent, LanguageModel, RecurrentState } from './models.js';

export interface GenerateOptions {
  prompt: string;
  /** Characters to generate after the prompt. */
  tokens: number;
  /** Softmax temperature; 0 picks the most likely character every time. */
  temperature: number;
  /** A uniform generator in [0, 1) for sampling. */
  random: () => number;
}

/** Draws an index from unnormalized logits at a temperature (argmax at temperature 0). */
function sample(logits: ArrayLike<number>, temperature: number, random: () => number): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best;
  const weights = Array.from(logits, (v) => Math.exp((v - logits[best]) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = random() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return weights.length - 1;
}

/** Copies the logits of the last position of [1, seq, vocab] logits to the host and releases `logits`. */
async function lastLogits(logits: fg.Tensor): Promise<Float32Array | Float64Array> {
  const seq = logits.shape[1];
  const last = fg.tidy(() => logits.narrow(1, seq - 1, 1).contiguous());
  logits.dispose();
  const values = await last.toArray();
  last.dispose();
  return values as Float32Array;
}

/**
 * Continues `options.prompt` by `options.tokens` characters. The GPT reruns its last `context`
 * characters for every new one; the recurrent models carry their state forward one character at a time.
 * The prompt must use the model's vocabulary; an empty prompt starts from a newline (or the first
 * character of the vocabulary).
 */
export async function generate(model: LanguageModel, tokenizer: Tokenizer, options: GenerateOptions): Promise<string> {
  const device = model.parameters()[0].device;
  const start = options.prompt.length > 0 ? options.prompt : tokenizer.vocabulary.includes('\n') ? '\n' : tokenizer.vocabulary[0];
  const ids = Array.from(tokenizer.encode(start, 'the prompt'));
  const generated: number[] = [];
  const toTensor = (values: number[]) => fg.tensor(values, { shape: [1, values.length], dtype: 'int32', device });
  const wasTraining = model.training;
  model.eval();
  try {
    if (model instanceof CharRecurrent) {
      let state: RecurrentState | null = null;
      let input = ids;
      for (let i = 0; i < options.tokens; i++) {
        const previous: RecurrentState | null = state;
        const run = (): [fg.Tensor, RecurrentState] => model.forwardWithState(toTensor(input), previous);
        const [logits, next] = fg.noGrad(() => fg.tidy(run));
        state = next;
        disposeState(previous);
        const id = sample(await lastLogits(logits), options.temperature, options.random);
        generated.push(id);
        input = [id];
      }
      disposeState(state);
    } else {
      const context = model.config.context;
      const all = [...ids];
      for (let i = 0; i < options.tokens; i++) {
        const window = all.slice(-context);
        const logits = fg.noGrad(() => fg.tidy(() => model.forward(toTensor(window))));
        const id = sample(await lastLogits(logits), options.temperature, options.random);
        generated.push(id);
        all.push(id);
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return options.prompt + tokenizer.decode(generated);
}

function disposeState(state: RecurrentState | null): void {
  if (state === null) return;
  if (Array.isArray(state)) state.forEach((t) => t.dispose());
  else state.dispose();
}
