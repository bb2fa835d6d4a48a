// Counts the WebGPU dispatches of one MultiheadAttention forward + backward and times GPT training steps,
// for comparing attention implementations. Run it with: npx tsx scripts/measure-attention.ts [steps]
// The GPT and its AdamW step are the benchmark's (bench/models.ts), and each step ends with fg.synchronize().

import * as fg from '../src/index.js';
import { getBackend } from '../src/runtime.js';
import { GPT_SHAPE, Gpt } from '../bench/models.js';
import { median } from '../bench/timing.js';

/** Wraps the backend's dispatch method to count calls, and returns a function that reads and resets the count. */
function countDispatches(): () => number {
  const backend = getBackend('webgpu') as unknown as { dispatch: (...args: unknown[]) => void };
  const original = backend.dispatch.bind(backend);
  let count = 0;
  backend.dispatch = (...args: unknown[]) => {
    count++;
    original(...args);
  };
  return () => {
    const value = count;
    count = 0;
    return value;
  };
}

async function attentionDispatches(takeCount: () => number, options: fg.nn.AttentionOptions): Promise<number> {
  const { batch, context, dim, heads } = GPT_SHAPE;
  const layer = new fg.nn.MultiheadAttention(dim, heads, { batchFirst: true });
  const x = fg.randn([batch, context, dim], { requiresGrad: true });
  await fg.synchronize();
  takeCount();
  fg.tidy(() => {
    const [out] = layer.forward(x, x, x, { ...options, needWeights: false });
    out.sum().backward();
  });
  const count = takeCount();
  for (const t of [x, ...layer.parameters()]) t.dispose();
  await fg.synchronize();
  return count;
}

async function gptStepTimes(steps: number): Promise<number[]> {
  fg.manualSeed(0);
  const shape = GPT_SHAPE;
  const model = new Gpt(shape);
  const optimizer = new fg.optim.AdamW(model.parameters(), { lr: 3e-3, betas: [0.9, 0.99] });
  const inputs = fg.randint(0, shape.vocabSize, [shape.batch, shape.context], { dtype: 'int32' });
  const targets = fg.randint(0, shape.vocabSize, [shape.batch, shape.context], { dtype: 'int32' });
  const times: number[] = [];
  for (let s = 0; s < steps + 2; s++) {
    const start = performance.now();
    fg.tidy(() => {
      const logits = model.forward(inputs);
      const loss = fg.nn.functional.crossEntropy(logits.reshape([-1, shape.vocabSize]), targets.reshape([-1]));
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
    });
    await fg.synchronize();
    // The first two steps compile pipelines and fill the buffer pool.
    if (s >= 2) times.push(performance.now() - start);
  }
  return times;
}

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? 15);
  if ((await fg.init()) !== 'webgpu') throw new Error('measure-attention: no WebGPU adapter found');
  const takeCount = countDispatches();
  const { batch, context } = GPT_SHAPE;
  const padding = fg.zeros([batch, context], { dtype: 'bool' });
  console.log(`dispatches, MultiheadAttention forward + backward, causal: ${await attentionDispatches(takeCount, { isCausal: true })}`);
  console.log(`dispatches, MultiheadAttention forward + backward, causal + keyPaddingMask: ${await attentionDispatches(takeCount, { isCausal: true, keyPaddingMask: padding })}`);
  const times = await gptStepTimes(steps);
  console.log(`GPT step (${JSON.stringify(GPT_SHAPE)}): median ${median(times).toFixed(1)} ms of ${steps} steps [${times.map((t) => t.toFixed(0)).join(', ')}]`);
  await fg.shutdown();
}

await main();
