// Shared test setup: initializes WebGPU once for the whole suite. WebGPU suites call requireWebGpu(),
// which skips them where no adapter exists, or fails the run when FUSEGRAD_REQUIRE_WEBGPU=1 (as in CI).

import { expect } from 'chai';
import seedrandom from 'seedrandom';
import * as fg from '../../src/index.js';

let ready: Promise<boolean> | null = null;

export function webGpuAvailable(): Promise<boolean> {
  ready ??= fg.init().then((device) => device === 'webgpu');
  return ready;
}

/** Call from a mocha before() hook of every suite that needs the WebGPU backend. */
export async function requireWebGpu(context: Mocha.Context): Promise<void> {
  if (await webGpuAvailable()) return;
  if (process.env.FUSEGRAD_REQUIRE_WEBGPU === '1') {
    throw new Error('FUSEGRAD_REQUIRE_WEBGPU=1 but no WebGPU adapter was found; run scripts/install-lavapipe.sh');
  }
  context.skip();
}

/** A seeded uniform generator for test data, independent of fg.manualSeed. */
export function seededValues(seed: number): () => number {
  return seedrandom.alea(String(seed));
}

/**
 * Collects garbage and lets finalizers run, so that tensors other tests dropped without dispose() are
 * released before a memory measurement. Needs node's --expose-gc (set in .mocharc.json).
 */
export async function settleGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('settleGarbage: run node with --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/**
 * Checks that two arrays have the same length and that each actual value is within atol + rtol * |expected|
 * of its expected value. An expected NaN requires a NaN, and equal values (infinities too) always pass.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) {
      expect(Number.isNaN(a), `${what}[${i}]: expected NaN, got ${a}`).to.equal(true);
      continue;
    }
    const ok = a === e || Math.abs(a - e) <= atol + rtol * Math.abs(e);
    expect(ok, `${what}[${i}]: got ${a}, expected ${e}`).to.equal(true);
  }
}
