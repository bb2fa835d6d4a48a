// Splits one training step of the benchmark GPT into its kernels: `npx tsx bench/profile-step.ts`.
// It records every dispatch of one step, then replays the dispatches of each kernel on their own, with the
// same pipelines, uniforms and buffers, repeated and followed by one synchronization. It prints the time per
// kernel, which separates the step's kernel time from the cost of recording it. Replayed kernels read
// whatever the pooled buffers hold by then, which changes no timing except for data-dependent branches.

import * as fg from '../src/index.js';
import { getBackend } from '../src/runtime.js';
import { GPT_SHAPE, Gpt } from './models.js';
import { median } from './timing.js';

type DispatchFn = (pipeline: GPUComputePipeline, uniforms: Uint32Array, buffers: GPUBuffer[], grid: [number, number, number]) => void;

interface Recorded {
  pipeline: GPUComputePipeline;
  uniforms: Uint32Array;
  buffers: GPUBuffer[];
  grid: [number, number, number];
}

const REPEATS = 5;

async function main(): Promise<void> {
  await fg.init({ backend: 'webgpu' });
  const backend = getBackend('webgpu') as unknown as { dispatch: DispatchFn };
  const original = backend.dispatch;
  fg.manualSeed(0);
  const shape = GPT_SHAPE;
  const model = new Gpt(shape);
  const optimizer = new fg.optim.AdamW(model.parameters(), { lr: 3e-3 });
  const inputs = fg.randint(0, shape.vocabSize, [shape.batch, shape.context], { dtype: 'int32' });
  const targets = fg.randint(0, shape.vocabSize, [shape.batch, shape.context], { dtype: 'int32' });
  const step = () => fg.tidy(() => {
    const loss = fg.nn.functional.crossEntropy(model.forward(inputs).reshape([-1, shape.vocabSize]), targets.reshape([-1]));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
  });

  const stepTimes: number[] = [];
  for (let i = 0; i < 7; i++) {
    const start = performance.now();
    step();
    await fg.synchronize();
    if (i >= 2) stepTimes.push(performance.now() - start);
  }

  const recorded: Recorded[] = [];
  backend.dispatch = function (this: unknown, pipeline, uniforms, buffers, grid) {
    recorded.push({ pipeline, uniforms: uniforms.slice(), buffers: [...buffers], grid: [...grid] });
    original.call(this, pipeline, uniforms, buffers, grid);
  };
  step();
  backend.dispatch = original;
  await fg.synchronize();

  const byKernel = new Map<string, Recorded[]>();
  for (const r of recorded) {
    const name = r.pipeline.label || 'unlabelled';
    byKernel.set(name, [...(byKernel.get(name) ?? []), r]);
  }
  const rows: { name: string; count: number; ms: number }[] = [];
  for (const [name, list] of byKernel) {
    const samples: number[] = [];
    for (let s = 0; s < 3; s++) {
      const start = performance.now();
      for (let k = 0; k < REPEATS; k++) for (const r of list) original.call(backend, r.pipeline, r.uniforms, r.buffers, r.grid);
      await fg.synchronize();
      samples.push((performance.now() - start) / REPEATS);
    }
    rows.push({ name, count: list.length, ms: median(samples) });
  }
  rows.sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  console.log(`GPT step (${shape.layers} layers, dim ${shape.dim}, batch ${shape.batch} x ${shape.context}): ${median(stepTimes).toFixed(1)} ms, ${recorded.length} dispatches`);
  console.log(`sum of the kernels replayed alone: ${total.toFixed(1)} ms\n`);
  console.log('| kernel | dispatches | ms per step | share |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.count} | ${r.ms.toFixed(2)} | ${((r.ms / total) * 100).toFixed(1)}% |`);

  optimizer.zeroGrad();
  for (const t of [...model.parameters(), inputs, targets]) t.dispose();
  await fg.shutdown();
}

await main();
