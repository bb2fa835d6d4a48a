// The fused ops, each timed in the same run against the same computation written with the unfused public
// ops that it replaces, so the ratio is what the fusion saves. Sizes are those of a GPT training step of
// batch 32 x context 64 (2048 rows).

import * as fg from '../src/index.js';
import { linear } from '../src/ops/linear.js';
import { measureInterleaved } from './timing.js';
import type { Timing, TimingOptions } from './timing.js';

export interface FusionResult {
  workload: string;
  fused: Timing;
  unfused: Timing;
  /** The fused version's rate in words (GFLOP/s or GB/s). */
  throughput: string;
}

type Step = () => void;

/** A workload: its two versions, built on tensors that `dispose` releases. */
interface FusionCase {
  workload: string;
  throughput: (ms: number) => string;
  fused: Step;
  unfused: Step;
  dispose: () => void;
}

const sync = () => fg.synchronize();

/** Runs backward from the sum of `out` and releases every gradient of `inputs`, inside tidy(). */
function backwardAndClear(out: () => fg.Tensor, inputs: fg.Tensor[]): void {
  fg.tidy(() => out().sum().backward());
  for (const t of inputs) {
    t.grad?.dispose();
    t.grad = null;
  }
}

const gflops = (flops: number) => (ms: number) => `${(flops / ms / 1e6).toFixed(2)} GFLOP/s`;
const gbps = (bytes: number) => (ms: number) => `${(bytes / ms / 1e6).toFixed(2)} GB/s`;

/** Builds the MLP's first layer, gelu(x W^T + b) from [2048, 128] to [2048, 512], forward only or with backward. */
function linearGelu(backward: boolean): FusionCase {
  const [rows, dim, hidden] = [2048, 128, 512];
  const x = fg.randn([rows, dim], { requiresGrad: true });
  const w = fg.randn([hidden, dim], { requiresGrad: true }).mul(0.05).detach();
  w.requiresGrad = true;
  const b = fg.zeros([hidden], { requiresGrad: true });
  const inputs = [x, w, b];
  const fused = () => linear(x, w, b, 'gelu');
  const unfused = () => fg.nn.functional.gelu(x.matmul(w.t()).add(b));
  const flops = 2 * rows * dim * hidden;
  if (!backward) {
    return {
      workload: `Linear + GELU [${rows}, ${dim}] to [${rows}, ${hidden}], forward`,
      throughput: gflops(flops),
      fused: () => fg.noGrad(() => fg.tidy(fused)).dispose(),
      unfused: () => fg.noGrad(() => fg.tidy(unfused)).dispose(),
      dispose: () => inputs.forEach((t) => t.dispose()),
    };
  }
  return {
    workload: `Linear + GELU [${rows}, ${dim}] to [${rows}, ${hidden}], forward + backward`,
    throughput: gflops(3 * flops),
    fused: () => backwardAndClear(fused, inputs),
    unfused: () => backwardAndClear(unfused, inputs),
    dispose: () => inputs.forEach((t) => t.dispose()),
  };
}

/** Builds cross entropy over [4096, 512] logits, forward + backward; the unfused version is logSoftmax, gather and mean. */
function crossEntropy(): FusionCase {
  const [rows, classes] = [4096, 512];
  const x = fg.randn([rows, classes], { requiresGrad: true });
  const targets = fg.randint(0, classes, [rows, 1], { dtype: 'int32' });
  const flat = targets.reshape([rows]);
  return {
    workload: `crossEntropy [${rows}, ${classes}], forward + backward`,
    throughput: gbps(8 * rows * classes),
    fused: () => backwardAndClear(() => fg.nn.functional.crossEntropy(x, flat), [x]),
    unfused: () => backwardAndClear(() => fg.nn.functional.logSoftmax(x, -1).gather(1, targets).neg().mean(), [x]),
    dispose: () => [x, targets, flat].forEach((t) => t.dispose()),
  };
}

/** Times each fused op and its unfused version, their samples interleaved. */
export async function benchFusions(log: (message: string) => void): Promise<FusionResult[]> {
  const options: TimingOptions = { warmup: 2, samples: 7, runsPerSample: 2 };
  const results: FusionResult[] = [];
  const cases = [() => linearGelu(false), () => linearGelu(true), crossEntropy];
  for (const make of cases) {
    const c = make();
    const [fused, unfused] = await measureInterleaved([{ run: c.fused, sync }, { run: c.unfused, sync }], options);
    c.dispose();
    results.push({ workload: c.workload, fused, unfused, throughput: c.throughput(fused.ms) });
    log(`  ${c.workload}: fused ${fused.ms.toFixed(2)} ms, unfused ${unfused.ms.toFixed(2)} ms`);
  }
  return results;
}
