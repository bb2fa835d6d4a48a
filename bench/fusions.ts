// The fused ops, each timed in the same run against the same computation written with the unfused public
// ops that it replaces, so the ratio is what the fusion saves. Sizes follow a GPT training step of batch
// 32 x context 64 (2048 rows), except cross entropy, which uses the [4096, 512] of the memory-bound rows.

import * as fg from '../src/index.js';
import { linear } from '../src/ops/linear.js';
import { GPT_SHAPE, Gpt } from './models.js';
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

/** Builds cross entropy over [4096, 512] logits, forward + backward. The unfused version is logSoftmax, gather and mean. */
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

/** Builds attention's softmax(scores / sqrt(16) with a causal mask) over [32, 4, 64, 64], forward + backward. */
function attentionSoftmax(): FusionCase {
  const shape = [32, 4, 64, 64];
  const scale = 1 / Math.sqrt(16);
  const scores = fg.randn(shape, { requiresGrad: true });
  const keys = fg.arange(0, 64).reshape([1, 64]);
  const queries = fg.arange(0, 64).reshape([64, 1]);
  const future = keys.gt(queries);
  const elements = shape.reduce((a, b) => a * b, 1);
  return {
    workload: 'attention scale + causal mask + softmax [32, 4, 64, 64], forward + backward',
    throughput: gbps(8 * elements),
    fused: () => backwardAndClear(() => fg.scaledMaskedSoftmax(scores, { scale, causal: true }), [scores]),
    unfused: () => backwardAndClear(() => fg.nn.functional.softmax(scores.mul(scale).maskedFill(future, -Infinity), -1), [scores]),
    dispose: () => [scores, keys, queries, future].forEach((t) => t.dispose()),
  };
}

/**
 * Builds one AdamW step over the benchmark GPT's parameters (30 tensors). The unfused version is torch 1.13's
 * single-tensor AdamW loop written with in-place public ops; the fused one is fusegrad's optimizer.
 */
function adamW(): FusionCase {
  fg.manualSeed(0);
  const model = new Gpt(GPT_SHAPE);
  const params = model.parameters();
  for (const p of params) p.grad = fg.randn(p.shape).mul(0.01);
  const [lr, beta1, beta2, eps, weightDecay] = [1e-3, 0.9, 0.999, 1e-8, 0.01];
  const optimizer = new fg.optim.AdamW(params, { lr, betas: [beta1, beta2], eps, weightDecay });
  const moments = params.map((p) => [fg.zerosLike(p), fg.zerosLike(p)]);
  let step = 0;
  const unfused = () => fg.noGrad(() => fg.tidy(() => {
    step++;
    const stepSize = lr / (1 - beta1 ** step);
    const root = Math.sqrt(1 - beta2 ** step);
    params.forEach((p, i) => {
      const [m, v] = moments[i];
      const g = p.grad!;
      p.mul_(1 - lr * weightDecay);
      m.mul_(beta1).add_(g, 1 - beta1);
      v.mul_(beta2).add_(g.mul(g), 1 - beta2);
      p.sub_(m.div(v.sqrt().div(root).add(eps)).mul(stepSize));
    });
  }));
  const elements = params.reduce((sum, p) => sum + p.numel, 0);
  return {
    workload: `AdamW step over ${params.length} parameters (${elements} elements)`,
    throughput: gbps(4 * 7 * elements),
    fused: () => optimizer.step(),
    unfused,
    dispose: () => {
      optimizer.zeroGrad();
      for (const t of [...params, ...moments.flat()]) t.dispose();
    },
  };
}

/** Times each fused op and its unfused version, their samples interleaved. */
export async function benchFusions(log: (message: string) => void): Promise<FusionResult[]> {
  const options: TimingOptions = { warmup: 2, samples: 7, runsPerSample: 2 };
  const results: FusionResult[] = [];
  const cases = [() => linearGelu(false), () => linearGelu(true), attentionSoftmax, crossEntropy, adamW];
  for (const make of cases) {
    const c = make();
    const [fused, unfused] = await measureInterleaved([{ run: c.fused, sync }, { run: c.unfused, sync }], options);
    c.dispose();
    results.push({ workload: c.workload, fused, unfused, throughput: c.throughput(fused.ms) });
    log(`  ${c.workload}: fused ${fused.ms.toFixed(2)} ms, unfused ${unfused.ms.toFixed(2)} ms`);
  }
  return results;
}
