// LayerNorm benchmark: the fused op against the same LayerNorm composed from primitive ops and against a
// copy of the same size (the bandwidth floor), forward and forward+backward, plus the bytes each saves
// for backward. Run it on its own with `npx tsx bench/layernorm.ts [--write]`, where --write also updates
// the LayerNorm section of docs/benchmarks.md. The bench suite calls benchLayerNorm().

import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import * as fg from '../src/index.js';
import type { Node } from '../src/autograd/node.js';
import { getBackend } from '../src/runtime.js';
import { writeDocsSection } from './docs.js';

export interface LayerNormBenchOptions {
  rows?: number;
  widths?: number[];
  /** Timed samples per measurement, of which the median is reported. */
  samples?: number;
  /** Runs between two synchronize() calls in one sample. */
  runsPerSample?: number;
}

export interface LayerNormBenchRow {
  rows: number;
  width: number;
  /** Median milliseconds per run. */
  copyMs: number;
  fusedForwardMs: number;
  fusedForwardBackwardMs: number;
  composedForwardMs: number;
  composedForwardBackwardMs: number;
  /** Medians over rounds of the fused time divided by the copy time of the same round. */
  forwardOverCopy: number;
  forwardBackwardOverCopy: number;
  /** Sum of savedBytes over every node of the graph that produces y. */
  fusedSavedBytes: number;
  composedSavedBytes: number;
  /** Bytes of x, for the saved-bytes target (x plus 8 bytes per row). */
  inputBytes: number;
  /** Bytes of the weight, which the fused op saves as a second handle on the parameter's storage. */
  weightBytes: number;
}

const EPS = 1e-5;

/** LayerNorm written with fusegrad's primitive ops, as a user would without the fused op. */
function composedLayerNorm(x: fg.Tensor, weight: fg.Tensor, bias: fg.Tensor): fg.Tensor {
  const mean = x.mean(-1, true);
  const centered = x.sub(mean);
  const variance = centered.mul(centered).mean(-1, true);
  const rstd = variance.add(EPS).rsqrt();
  return centered.mul(rstd).mul(weight).add(bias);
}

/** Sums savedBytes over every node reachable from y's gradFn. */
function savedBytes(y: fg.Tensor): number {
  const seen = new Set<Node>();
  const stack: Node[] = y.gradFn ? [y.gradFn] : [];
  let total = 0;
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    total += node.savedBytes.reduce((a, b) => a + b, 0);
    for (const edge of node.edges) if (edge?.node) stack.push(edge.node);
  }
  return total;
}

/**
 * Times several variants in rounds: each round runs every variant `runsPerSample` times between two
 * synchronize() calls, after a warm-up. Interleaving keeps the ratios between variants fair when other
 * processes load the machine unevenly over the run. Returns milliseconds per run, per round.
 */
async function timeRounds(variants: Record<string, () => void>, rounds: number, runsPerSample: number): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = {};
  for (const run of Object.values(variants)) {
    for (let i = 0; i < 2; i++) run();
    await fg.synchronize();
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(variants)) {
      const start = performance.now();
      for (let r = 0; r < runsPerSample; r++) run();
      await fg.synchronize();
      (times[name] ??= []).push((performance.now() - start) / runsPerSample);
    }
  }
  return times;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The median over rounds of a[i] / b[i]. */
function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((v, i) => v / b[i]));
}

function clearGrads(tensors: fg.Tensor[]): void {
  for (const t of tensors) {
    t.grad?.dispose();
    t.grad = null;
  }
}

export async function benchLayerNorm(options: LayerNormBenchOptions = {}): Promise<LayerNormBenchRow[]> {
  const rows = options.rows ?? 4096;
  const widths = options.widths ?? [768, 1024, 4096];
  const samples = options.samples ?? 9;
  const runsPerSample = options.runsPerSample ?? 3;
  fg.manualSeed(0);
  const results: LayerNormBenchRow[] = [];
  for (const width of widths) {
    const x = fg.randn([rows, width], { requiresGrad: true });
    const weight = fg.randn([width], { requiresGrad: true });
    const bias = fg.randn([width], { requiresGrad: true });
    const grad = fg.randn([rows, width]);
    const leaves = [x, weight, bias];
    const fused = () => fg.nn.functional.layerNorm(x, width, weight, bias, EPS);
    const composed = () => composedLayerNorm(x, weight, bias);
    const forward = (fn: () => fg.Tensor) => () => fg.tidy(() => fg.noGrad(fn)).dispose();
    const forwardBackward = (fn: () => fg.Tensor) => () => {
      fg.tidy(() => fn().backward(grad));
      clearGrads(leaves);
    };
    const saved = (fn: () => fg.Tensor) => {
      const y = fn();
      const bytes = savedBytes(y);
      y.dispose();
      return bytes;
    };

    const fast = await timeRounds({
      copy: forward(() => x.clone()),
      fusedForward: forward(fused),
      fusedForwardBackward: forwardBackward(fused),
    }, samples, runsPerSample);
    // The composed version runs a dozen kernels, so it gets fewer rounds of one run each.
    const slow = await timeRounds({
      copy: forward(() => x.clone()),
      composedForward: forward(composed),
      composedForwardBackward: forwardBackward(composed),
    }, Math.max(3, Math.ceil(samples / 3)), 1);
    results.push({
      rows,
      width,
      copyMs: median(fast.copy),
      fusedForwardMs: median(fast.fusedForward),
      fusedForwardBackwardMs: median(fast.fusedForwardBackward),
      composedForwardMs: median(slow.composedForward),
      composedForwardBackwardMs: median(slow.composedForwardBackward),
      forwardOverCopy: medianRatio(fast.fusedForward, fast.copy),
      forwardBackwardOverCopy: medianRatio(fast.fusedForwardBackward, fast.copy),
      fusedSavedBytes: fg.tidy(() => saved(fused)),
      composedSavedBytes: fg.tidy(() => saved(composed)),
      inputBytes: x.numel * x.elementSize,
      weightBytes: weight.numel * weight.elementSize,
    });
    for (const t of [...leaves, grad]) t.dispose();
  }
  return results;
}

// ---- report ----

const times = (v: number) => `${v.toFixed(2)}x`;
const ms = (v: number) => v.toFixed(2);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

/** A markdown table of the results and one line per target saying whether it was met. */
export function formatLayerNormResults(results: LayerNormBenchRow[]): string {
  const lines = [
    '| rows x width | copy ms | fused fwd ms (/ copy) | fused fwd+bwd ms (/ copy) | composed fwd ms | composed fwd+bwd ms | composed / fused, fwd and fwd+bwd | saved fused | saved composed |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const checks: string[] = [];
  for (const r of results) {
    lines.push(
      `| ${r.rows} x ${r.width} | ${ms(r.copyMs)} | ${ms(r.fusedForwardMs)} (${times(r.forwardOverCopy)}) | ` +
        `${ms(r.fusedForwardBackwardMs)} (${times(r.forwardBackwardOverCopy)}) | ${ms(r.composedForwardMs)} | ${ms(r.composedForwardBackwardMs)} | ` +
        `${times(r.composedForwardMs / r.fusedForwardMs)} and ${times(r.composedForwardBackwardMs / r.fusedForwardBackwardMs)} | ` +
        `${mib(r.fusedSavedBytes)} | ${mib(r.composedSavedBytes)} |`,
    );
    const target = (name: string, value: number, limit: number, atMost: boolean, show: (v: number) => string, why = '') => {
      const met = atMost ? value <= limit : value >= limit;
      const by = atMost ? value - limit : limit - value;
      const verdict = met ? 'met' : `missed by ${show(by)}${why}`;
      checks.push(`- ${r.width}: ${name} ${show(value)} (target ${atMost ? '<=' : '>='} ${show(limit)}): ${verdict}`);
    };
    target('forward / copy', r.forwardOverCopy, 1.5, true, times);
    target('forward+backward / copy', r.forwardBackwardOverCopy, 3.5, true, times);
    target('composed / fused, forward', r.composedForwardMs / r.fusedForwardMs, 3, false, times);
    target('composed / fused, forward+backward', r.composedForwardBackwardMs / r.fusedForwardBackwardMs, 3, false, times);
    const excess = r.fusedSavedBytes - r.inputBytes - 8 * r.rows;
    const why = excess === r.weightBytes ? ', the weight, which is a second handle on the parameter and allocates nothing' : '';
    target('saved bytes', r.fusedSavedBytes, r.inputBytes + 8 * r.rows, true, (v) => `${v} B`, why);
  }
  return [...lines, '', ...checks].join('\n');
}

function describeMachine(): string {
  let model = cpus()[0]?.model ?? 'unknown CPU';
  try {
    const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
    model = /Model name:\s*(.+)/.exec(lscpu)?.[1].trim() ?? model;
  } catch {
    // Some systems lack lscpu, and then the model from os.cpus() is used.
  }
  return `${model}, ${cpus().length} cores, adapter: ${getBackend().description}`;
}


async function main(): Promise<void> {
  await fg.init({ backend: 'webgpu' });
  const results = await benchLayerNorm();
  const report = [
    `Machine: ${describeMachine()}. Command: \`npx tsx bench/layernorm.ts --write\` (${new Date().toISOString().slice(0, 10)}).`,
    'Medians over rounds, each timed between `fg.synchronize()` calls after a warm-up. The fused op and the copy',
    'alternate in 9 rounds of 3 runs, and the ratios to the copy are medians of per-round ratios. The composed',
    'version runs 3 rounds of one run, each with its own copy.',
    '',
    formatLayerNormResults(results),
  ].join('\n');
  console.log(report);
  if (process.argv.includes('--write')) writeDocsSection('layernorm-bench', 'LayerNorm', report);
  await fg.shutdown();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
