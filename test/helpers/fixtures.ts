// Reads the PyTorch fixtures that scripts/make-fixtures.py writes to test/fixtures/GROUP.json, and
// compares fusegrad's numbers with them.

import { readFileSync } from 'node:fs';
import { expect } from 'chai';

/** A number as the fixtures store it: JSON has no Infinity or NaN, so those are the strings below. */
export type EncodedNumber = number | 'inf' | '-inf' | 'nan';

export type ViewStep = ['t'] | ['transpose', number, number] | ['permute', number[]];

export interface FixtureInput {
  shape: number[];
  /** 'float' inputs are created in the dtype under test (float32 or float64). */
  dtype: 'float' | 'int32' | 'bool';
  values: (EncodedNumber | boolean)[];
  requiresGrad: boolean;
  /** View ops applied to the leaf before the op runs; gradients are taken with respect to the leaf. */
  view: ViewStep[];
}

export interface FixtureCase {
  name: string;
  op: string;
  args: Record<string, unknown>;
  inputs: FixtureInput[];
  output: { shape: number[]; dtype: 'float' | 'int32'; values: EncodedNumber[] };
  /** The weighting w of the output in the loss sum(out * w), or null where the output has no gradient. */
  weight: EncodedNumber[] | null;
  /** d(sum(out * w)) / d(input) for each input, or null for an input that needs no gradient. */
  grads: (EncodedNumber[] | null)[];
}

export interface FixtureFile {
  group: string;
  torch: string;
  cases: FixtureCase[];
}

export function loadFixtures(group: string): FixtureFile {
  const url = new URL(`../fixtures/${group}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as FixtureFile;
}

export function decodeNumber(value: EncodedNumber | boolean): number {
  if (value === 'inf') return Infinity;
  if (value === '-inf') return -Infinity;
  if (value === 'nan') return NaN;
  return Number(value);
}

export function decodeValues(values: readonly (EncodedNumber | boolean)[]): number[] {
  return values.map(decodeNumber);
}

/**
 * An element passes when |actual - expected| <= atol * scale + rtol * |expected|, where scale is the
 * largest finite |expected| of the whole tensor (at least 1). Rounding errors of sums, matmuls and
 * softmax grow with the size of the terms, so an element that cancels to near zero is held to the
 * tensor's scale, not its own. Infinities must match exactly and NaN must be NaN.
 */
export interface Tolerance {
  rtol: number;
  atol: number;
}

export function expectClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: Tolerance, label: string): void {
  expect(actual.length, `${label}: element count`).to.equal(expected.length);
  const finite = expected.filter(Number.isFinite).map(Math.abs);
  const scale = Math.max(1, ...finite);
  const atol = tolerance.atol * scale;
  let worst = { index: -1, excess: 0 };
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) {
      expect(Number.isNaN(a), `${label}[${i}]: expected NaN, got ${a}`).to.equal(true);
      continue;
    }
    if (!Number.isFinite(e)) {
      expect(a, `${label}[${i}]`).to.equal(e);
      continue;
    }
    const ratio = Math.abs(a - e) / (atol + tolerance.rtol * Math.abs(e));
    const excess = Number.isNaN(ratio) ? Infinity : ratio;
    if (excess > worst.excess) worst = { index: i, excess };
  }
  if (worst.excess > 1) {
    const i = worst.index;
    expect.fail(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]} (rtol ${tolerance.rtol}, atol ${atol})`);
  }
}
