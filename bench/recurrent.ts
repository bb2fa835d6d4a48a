// Recurrent-layer benchmark: nn.LSTM and nn.GRU (one fused op per layer) against the same cells composed
// from primitive ops per timestep, forward and forward+backward, with the number of tape nodes each records.
// Run with `npx tsx bench/recurrent.ts [--steps N] [--batch N] [--hidden N]`; it prints a Markdown table.

import { parseArgs } from 'node:util';
import * as fg from '../src/index.js';
import type { Node } from '../src/autograd/node.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '32' },
    batch: { type: 'string', default: '8' },
    hidden: { type: 'string', default: '64' },
    samples: { type: 'string', default: '5' },
  },
});
const steps = Number(args.steps);
const batch = Number(args.batch);
const hidden = Number(args.hidden);
const samples = Number(args.samples);
const inputSize = hidden;

/** Counts the nodes reachable from y's gradFn. */
function tapeNodes(y: fg.Tensor): number {
  const seen = new Set<Node>();
  const stack: Node[] = y.gradFn ? [y.gradFn] : [];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    for (const edge of node.edges) if (edge?.node) stack.push(edge.node);
  }
  return seen.size;
}

/** Runs the LSTM of torch.nn.LSTM written with primitive ops, one step at a time, as a user would without nn.LSTM. */
function composedLstm(layer: fg.nn.LSTM, x: fg.Tensor): fg.Tensor {
  const H = hidden;
  const bias = layer.biasIh_l0!.add(layer.biasHh_l0!);
  const projected = fg.nn.functional.linear(x, layer.weightIh_l0, bias);
  let h: fg.Tensor | null = null;
  let c: fg.Tensor | null = null;
  const outputs: fg.Tensor[] = [];
  for (let t = 0; t < steps; t++) {
    const xt = projected.narrow(0, t, 1).squeeze(0);
    const gates: fg.Tensor = h ? xt.add(fg.nn.functional.linear(h, layer.weightHh_l0)) : xt;
    const [i, f, g, o] = [0, 1, 2, 3].map((k) => gates.narrow(1, k * H, H));
    const ig = i.sigmoid().mul(g.tanh());
    c = c ? f.sigmoid().mul(c).add(ig) : ig;
    h = o.sigmoid().mul(c.tanh());
    outputs.push(h);
  }
  return fg.stack(outputs);
}

/** Runs the GRU of torch.nn.GRU written with primitive ops, one step at a time. */
function composedGru(layer: fg.nn.GRU, x: fg.Tensor): fg.Tensor {
  const H = hidden;
  const projected = fg.nn.functional.linear(x, layer.weightIh_l0, layer.biasIh_l0!);
  let h = fg.zeros([batch, H], { device: x.device });
  const outputs: fg.Tensor[] = [];
  for (let t = 0; t < steps; t++) {
    const xt = projected.narrow(0, t, 1).squeeze(0);
    const hh = fg.nn.functional.linear(h, layer.weightHh_l0, layer.biasHh_l0!);
    const rz = xt.narrow(1, 0, 2 * H).add(hh.narrow(1, 0, 2 * H)).sigmoid();
    const r = rz.narrow(1, 0, H);
    const z = rz.narrow(1, H, H);
    const n = xt.narrow(1, 2 * H, H).add(r.mul(hh.narrow(1, 2 * H, H))).tanh();
    h = n.add(z.mul(h.sub(n)));
    outputs.push(h);
  }
  return fg.stack(outputs);
}

/** Median milliseconds of `run` over `samples` timed runs, after one warm-up run. */
async function time(run: () => void): Promise<number> {
  const times: number[] = [];
  for (let s = 0; s <= samples; s++) {
    await fg.synchronize();
    const start = performance.now();
    run();
    await fg.synchronize();
    if (s > 0) times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const device of ['cpu', 'webgpu'] as const) {
    if (device === 'webgpu' && (await fg.init()) !== 'webgpu') continue;
    if (device === 'cpu') await fg.init({ backend: 'cpu' });
    fg.manualSeed(0);
    const lstm = new fg.nn.LSTM(inputSize, hidden);
    const gru = new fg.nn.GRU(inputSize, hidden);
    const x = fg.randn([steps, batch, inputSize]);
    const variants: [string, fg.nn.Module, () => fg.Tensor][] = [
      ['LSTM, nn.LSTM (fused)', lstm, () => lstm.forward(x)[0]],
      ['LSTM, composed per step', lstm, () => composedLstm(lstm, x)],
      ['GRU, nn.GRU (fused)', gru, () => gru.forward(x)[0]],
      ['GRU, composed per step', gru, () => composedGru(gru, x)],
    ];
    for (const [label, module, forward] of variants) {
      const nodes = fg.tidy(() => tapeNodes(forward()));
      const forwardMs = await time(() => fg.tidy(() => fg.noGrad(() => forward())));
      const trainMs = await time(() => {
        fg.tidy(() => forward().sum().backward());
        module.zeroGrad();
      });
      rows.push(`| ${device} | ${label} | ${forwardMs.toFixed(1)} | ${trainMs.toFixed(1)} | ${nodes} |`);
    }
  }
  console.log(`steps ${steps}, batch ${batch}, input ${inputSize}, hidden ${hidden}, float32, median of ${samples} runs\n`);
  console.log('| backend | layer | forward ms | forward+backward ms | tape nodes |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
  await fg.shutdown();
}

await main();
