// Times optimizer.step() of AdamW over the parameters of the example GPT at its default size, with two
// parameter groups (matrices with weight decay, vectors without), on WebGPU or on the CPU backend. Each
// sample ends with fg.synchronize(), and the script prints the median of 20 samples after 3 warm-up steps.
// Run: npx tsx scripts/time-optimizer-step.ts [webgpu|cpu]

import * as fg from '../src/index.js';
import { CharTransformer } from '../examples/lib/models.js';
import { getBackend } from '../src/runtime.js';

const SAMPLES = 20;
const WARMUP = 3;

async function main(): Promise<void> {
  const device = await fg.init({ backend: (process.argv[2] ?? 'webgpu') as fg.DeviceName });
  fg.manualSeed(1);
  // The defaults of examples/train.ts (context 64, dim 64, 2 layers, 4 heads), with Moby Dick's 89 characters.
  const model = new CharTransformer({ model: 'gpt', vocabSize: 89, context: 64, dim: 64, layers: 2, heads: 4, dropout: 0 }, device);
  const params = model.parameters();
  for (const p of params) p.grad = fg.keep(fg.randn([...p.shape], { device }).mul(1e-2));
  const decay = params.filter((p) => p.ndim >= 2);
  const noDecay = params.filter((p) => p.ndim < 2);
  const optimizer = new fg.optim.AdamW([{ params: decay, weightDecay: 0.1 }, { params: noDecay, weightDecay: 0 }], { lr: 1e-3, betas: [0.9, 0.99] });

  for (let i = 0; i < WARMUP; i++) optimizer.step();
  await fg.synchronize();
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    optimizer.step();
    await fg.synchronize();
    times.push(performance.now() - start);
  }
  // Only the WebGPU backend counts dispatches.
  const counter = getBackend(device) as { dispatchCount?: number };
  const before = counter.dispatchCount ?? 0;
  optimizer.step();
  const dispatches = counter.dispatchCount === undefined ? '' : `, ${counter.dispatchCount - before} dispatches per step`;
  await fg.synchronize();
  times.sort((a, b) => a - b);
  const median = (times[SAMPLES / 2 - 1] + times[SAMPLES / 2]) / 2;
  const elements = params.reduce((n, p) => n + p.numel, 0);
  console.log(`${device}: ${params.length} parameters, ${elements} elements; optimizer.step() median ${median.toFixed(2)} ms over ${SAMPLES} samples${dispatches}`);
  await fg.shutdown();
}

await main();
