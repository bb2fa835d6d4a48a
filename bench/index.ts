// The benchmark suite: `npm run bench` (add `-- --docs` to also rewrite the table in docs/benchmarks.md,
// `-- --only matmul,training` to run some sections).
// Each workload runs on fusegrad's WebGPU backend and on baselines measured in the same process: a copy
// of the same size (memory-bound ops), TensorFlow.js on its WebGPU backend on the same adapter, and
// fusegrad's CPU backend (small sizes). Ratios are baseline time / fusegrad time, so above 1 means
// fusegrad is faster. Results go to bench/results/<date>-<adapter>.json.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, type as osType, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';
import * as fg from '../src/index.js';
import { getBackend } from '../src/runtime.js';
import { GPT_SHAPE, Gpt, LstmModel } from './models.js';
import type { LanguageModel, ModelShape } from './models.js';
import { loadTfjs, tfLayerNorm, tfjsGptStep } from './tfjs-baseline.js';
import type { TfjsBaseline } from './tfjs-baseline.js';
import { measure, measureInterleaved, median } from './timing.js';
import type { Contender, TimingOptions } from './timing.js';
import { writeDocsSection } from './docs.js';
import { benchFusions } from './fusions.js';
import { benchLayerNorm } from './layernorm.js';

// TensorFlow.js finds WebGPU through navigator.gpu; fusegrad uses the same object when it is set.
Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });

/** One measured baseline of a row: its time per run, or null with the reason it was skipped. */
interface Baseline {
  ms: number | null;
  skipped?: string;
}

type BaselineName = 'tfjs' | 'copy' | 'cpu' | 'unfused';

interface Row {
  group: string;
  workload: string;
  /** Median fusegrad WebGPU milliseconds per run. */
  ms: number;
  /** Throughput in words: GFLOP/s, GB/s or tokens/s. */
  throughput: string;
  baselines: Partial<Record<BaselineName, Baseline>>;
}

const rows: Row[] = [];
const gpuSync = () => fg.synchronize();
const noSync = async () => {};

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Adds a row and logs it, so a long run shows progress. */
function addRow(row: Row): void {
  rows.push(row);
  const parts = Object.entries(row.baselines).map(([name, b]) => `${name} ${b.ms === null ? 'skipped' : `${b.ms.toFixed(2)} ms`}`);
  log(`  ${row.workload}: ${row.ms.toFixed(2)} ms (${row.throughput})${parts.length ? `; ${parts.join(', ')}` : ''}`);
}

const gflops = (flops: number, ms: number) => `${(flops / ms / 1e6).toFixed(2)} GFLOP/s`;
const gbps = (bytes: number, ms: number) => `${(bytes / ms / 1e6).toFixed(2)} GB/s`;
const tokensPerSecond = (tokens: number, ms: number) => `${Math.round((tokens / ms) * 1000)} tokens/s`;

/** Times a fusegrad workload on the CPU backend, making it the default device for the duration. */
async function onCpu(setup: () => { run: () => unknown; dispose: () => void }, options: TimingOptions): Promise<Baseline> {
  await fg.init({ backend: 'cpu' });
  try {
    const { run, dispose } = setup();
    const { ms } = await measure(run, noSync, options);
    dispose();
    return { ms };
  } finally {
    await fg.init({ backend: 'webgpu' });
  }
}

async function tfjsTime(tfjs: TfjsBaseline | null, reason: string, run: () => void, options: TimingOptions): Promise<Baseline> {
  if (!tfjs) return { ms: null, skipped: reason };
  return { ms: (await measure(run, tfjs.sync, options)).ms };
}

// ---- matmul ----

interface MatmulCase {
  label: string;
  a: number[];
  b: number[];
  /** Multiplies by b transposed (b is stored [..., n, k]), as x @ W^T in a Linear layer. */
  transposeB?: boolean;
  cpu?: boolean;
}

async function benchMatmul(tfjs: TfjsBaseline | null, tfjsReason: string): Promise<void> {
  log('matmul');
  const cases: MatmulCase[] = [128, 256, 512, 1024].map((n) => ({ label: `${n} x ${n} x ${n}`, a: [n, n], b: [n, n], cpu: n <= 256 }));
  cases.push(
    { label: '[2048, 128] x [128, 512] (MLP up-projection)', a: [2048, 128], b: [128, 512] },
    { label: '[2048, 128] x [512, 128]^T (Linear, x W^T)', a: [2048, 128], b: [512, 128], transposeB: true },
    { label: '[128, 64, 16] x [128, 16, 64] (attention q k^T)', a: [128, 64, 16], b: [128, 64, 16], transposeB: true },
    { label: '[128, 64, 64] x [128, 64, 16] (attention weights v)', a: [128, 64, 64], b: [128, 64, 16] },
  );
  for (const c of cases) {
    const big = c.a[c.a.length - 1] * c.a[c.a.length - 2] >= 512 * 512;
    const options: TimingOptions = big ? { warmup: 1, samples: 5 } : { warmup: 2, samples: 7, runsPerSample: 3 };
    const m = c.a[c.a.length - 2];
    const k = c.a[c.a.length - 1];
    const n = c.transposeB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
    const batch = c.a.slice(0, -2).reduce((x, y) => x * y, 1);
    const flops = 2 * batch * m * n * k;
    const product = (a: fg.Tensor, b: fg.Tensor) => (c.transposeB ? a.matmul(b.transpose(-1, -2)) : a.matmul(b));

    const a = fg.randn(c.a);
    const b = fg.randn(c.b);
    const contenders: Contender[] = [{ run: () => fg.tidy(() => product(a, b)).dispose(), sync: gpuSync }];
    const tfOperands = tfjs ? [tfjs.tf.randomNormal(c.a), tfjs.tf.randomNormal(c.b)] : [];
    if (tfjs) {
      const [ta, tb] = tfOperands;
      contenders.push({ run: () => tfjs.tf.matMul(ta, tb, false, c.transposeB === true).dispose(), sync: tfjs.sync });
    }
    const [fusegradTiming, tfTiming] = await measureInterleaved(contenders, options);
    const ms = fusegradTiming.ms;
    for (const t of [a, b, ...tfOperands]) t.dispose();
    const baselines: Row['baselines'] = { tfjs: tfTiming ? { ms: tfTiming.ms } : { ms: null, skipped: tfjsReason } };
    baselines.cpu = c.cpu
      ? await onCpu(() => {
        const x = fg.randn(c.a);
        const y = fg.randn(c.b);
        return { run: () => fg.tidy(() => product(x, y)).dispose(), dispose: () => [x, y].forEach((t) => t.dispose()) };
      }, { warmup: 1, samples: 3 })
      : { ms: null, skipped: 'too slow on the CPU backend' };
    addRow({ group: 'matmul', workload: c.label, ms, throughput: gflops(flops, ms), baselines });
  }
}

// ---- memory-bound ops ----

async function copyTime(shape: number[], options: TimingOptions): Promise<Baseline> {
  const x = fg.randn(shape);
  const { ms } = await measure(() => x.clone().dispose(), gpuSync, options);
  x.dispose();
  return { ms };
}

async function benchMemoryBound(tfjs: TfjsBaseline | null, tfjsReason: string): Promise<void> {
  log('memory-bound ops');
  const options: TimingOptions = { warmup: 2, samples: 7, runsPerSample: 5 };
  const million = [1 << 20];

  const a = fg.randn(million);
  const b = fg.randn(million);
  const copy = await copyTime(million, options);
  const add = await measure(() => a.add(b).dispose(), gpuSync, options);
  let tfAdd: Baseline = { ms: null, skipped: tfjsReason };
  if (tfjs) {
    const ta = tfjs.tf.randomNormal(million);
    const tb = tfjs.tf.randomNormal(million);
    tfAdd = await tfjsTime(tfjs, tfjsReason, () => tfjs.tf.add(ta, tb).dispose(), options);
    ta.dispose();
    tb.dispose();
  }
  const cpuAdd = await onCpu(() => {
    const x = fg.randn(million);
    const y = fg.randn(million);
    return { run: () => x.add(y).dispose(), dispose: () => [x, y].forEach((t) => t.dispose()) };
  }, { warmup: 1, samples: 3 });
  addRow({ group: 'elementwise', workload: 'add, 1M elements', ms: add.ms, throughput: gbps(12 * million[0], add.ms), baselines: { tfjs: tfAdd, copy, cpu: cpuAdd } });

  const gelu = await measure(() => fg.nn.functional.gelu(a).dispose(), gpuSync, options);
  const cpuGelu = await onCpu(() => {
    const x = fg.randn(million);
    return { run: () => fg.nn.functional.gelu(x).dispose(), dispose: () => x.dispose() };
  }, { warmup: 1, samples: 3 });
  addRow({ group: 'elementwise', workload: 'gelu, 1M elements', ms: gelu.ms, throughput: gbps(8 * million[0], gelu.ms), baselines: { copy, cpu: cpuGelu } });
  a.dispose();
  b.dispose();

  const shape = [4096, 512];
  const x = fg.randn(shape);
  const targets = fg.randint(0, shape[1], [shape[0]], { dtype: 'int32' });
  const rowCopy = await copyTime(shape, options);
  const softmax = await measure(() => fg.nn.functional.softmax(x, -1).dispose(), gpuSync, options);
  const crossEntropy = await measure(() => fg.noGrad(() => fg.tidy(() => fg.nn.functional.crossEntropy(x, targets))).dispose(), gpuSync, options);
  const xGrad = fg.randn(shape, { requiresGrad: true });
  const crossEntropyBackward = await measure(() => {
    fg.tidy(() => fg.nn.functional.crossEntropy(xGrad, targets).backward());
    xGrad.grad?.dispose();
    xGrad.grad = null;
  }, gpuSync, options);
  let tfSoftmax: Baseline = { ms: null, skipped: tfjsReason };
  let tfCrossEntropy: Baseline = { ms: null, skipped: tfjsReason };
  if (tfjs) {
    const { tf } = tfjs;
    const tx = tf.randomNormal(shape);
    const labels = tf.oneHot(tf.randomUniform([shape[0]], 0, shape[1], 'int32'), shape[1]);
    tfSoftmax = await tfjsTime(tfjs, tfjsReason, () => tf.softmax(tx).dispose(), options);
    tfCrossEntropy = await tfjsTime(tfjs, tfjsReason, () => tf.losses.softmaxCrossEntropy(labels, tx).dispose(), options);
    tx.dispose();
    labels.dispose();
  }
  const bytes = 8 * shape[0] * shape[1];
  addRow({ group: 'rows', workload: 'softmax [4096, 512]', ms: softmax.ms, throughput: gbps(bytes, softmax.ms), baselines: { tfjs: tfSoftmax, copy: rowCopy } });
  addRow({
    group: 'rows', workload: 'crossEntropy [4096, 512] forward (tfjs: one-hot labels)', ms: crossEntropy.ms,
    throughput: gbps(bytes / 2, crossEntropy.ms), baselines: { tfjs: tfCrossEntropy, copy: rowCopy },
  });
  addRow({ group: 'rows', workload: 'crossEntropy [4096, 512] forward + backward', ms: crossEntropyBackward.ms, throughput: gbps(bytes, crossEntropyBackward.ms), baselines: { copy: rowCopy } });
  for (const t of [x, targets, xGrad]) t.dispose();
}

// ---- fusions ----

/** Runs bench/fusions.ts: each fused op against the unfused ops it replaces. */
async function benchFusionRows(): Promise<void> {
  log('fusions');
  for (const r of await benchFusions(log)) {
    rows.push({ group: 'fusions', workload: r.workload, ms: r.fused.ms, throughput: r.throughput, baselines: { unfused: { ms: r.unfused.ms } } });
  }
}

// ---- LayerNorm ----

/** Runs bench/layernorm.ts's benchLayerNorm(), plus the tfjs LayerNorm at the same sizes. */
async function benchLayerNormRows(tfjs: TfjsBaseline | null, tfjsReason: string): Promise<void> {
  log('LayerNorm');
  const results = await benchLayerNorm({ rows: 4096, widths: [512, 1024], samples: 5, runsPerSample: 2 });
  for (const r of results) {
    let tfForward: Baseline = { ms: null, skipped: tfjsReason };
    if (tfjs) {
      const { tf } = tfjs;
      const x = tf.randomNormal([r.rows, r.width]);
      const weight = tf.randomNormal([r.width]);
      const bias = tf.randomNormal([r.width]);
      tfForward = await tfjsTime(tfjs, tfjsReason, () => tfLayerNorm(tf, x, weight, bias).dispose(), { warmup: 2, samples: 5, runsPerSample: 2 });
      for (const t of [x, weight, bias]) t.dispose();
    }
    const bytes = 8 * r.rows * r.width;
    addRow({
      group: 'LayerNorm', workload: `LayerNorm [${r.rows}, ${r.width}] forward`, ms: r.fusedForwardMs, throughput: gbps(bytes, r.fusedForwardMs),
      baselines: { tfjs: tfForward, copy: { ms: r.copyMs } },
    });
    addRow({
      group: 'LayerNorm', workload: `LayerNorm [${r.rows}, ${r.width}] forward + backward`, ms: r.fusedForwardBackwardMs,
      throughput: gbps(2 * bytes, r.fusedForwardBackwardMs), baselines: { copy: { ms: r.copyMs } },
    });
  }
}

// ---- training steps ----

/** Builds a model on the default device and returns one AdamW training step on a fixed batch. */
function fusegradStep(build: (shape: ModelShape) => LanguageModel, shape: ModelShape): { run: () => void; dispose: () => void } {
  fg.manualSeed(0);
  const model = build(shape);
  const optimizer = new fg.optim.AdamW(model.parameters(), { lr: 3e-3, betas: [0.9, 0.99] });
  const inputs = fg.randint(0, shape.vocabSize, [shape.batch, shape.context], { dtype: 'int32' });
  const targets = fg.randint(0, shape.vocabSize, [shape.batch, shape.context], { dtype: 'int32' });
  const run = () => {
    fg.tidy(() => {
      const logits = model.forward(inputs);
      const loss = fg.nn.functional.crossEntropy(logits.reshape([-1, shape.vocabSize]), targets.reshape([-1]));
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
    });
  };
  const dispose = () => {
    optimizer.zeroGrad();
    for (const t of [...model.parameters(), inputs, targets]) t.dispose();
  };
  return { run, dispose };
}

async function benchTraining(tfjs: TfjsBaseline | null, tfjsReason: string): Promise<void> {
  log('training steps');
  const shape = GPT_SHAPE;
  const tokens = shape.batch * shape.context;
  const options: TimingOptions = { warmup: 2, samples: 5 };
  const gpt = (s: ModelShape) => new Gpt(s);
  const lstm = (s: ModelShape) => new LstmModel(s);

  const gptStep = fusegradStep(gpt, shape);
  const tfGpt = tfjs ? tfjsGptStep(tfjs.tf, shape) : null;
  const contenders: Contender[] = [{ run: gptStep.run, sync: gpuSync }];
  if (tfjs && tfGpt) contenders.push({ run: tfGpt.step, sync: tfjs.sync });
  const [fusegradTiming, tfTiming] = await measureInterleaved(contenders, options);
  const ms = fusegradTiming.ms;
  gptStep.dispose();
  tfGpt?.dispose();
  const tfStep: Baseline = tfTiming ? { ms: tfTiming.ms } : { ms: null, skipped: tfjsReason };
  const cpuStep = await onCpu(() => fusegradStep(gpt, shape), { warmup: 1, samples: 2 });
  addRow({
    group: 'training', workload: `GPT step (${shape.layers} layers, dim ${shape.dim}, ${shape.heads} heads, batch ${shape.batch} x ${shape.context})`,
    ms, throughput: tokensPerSecond(tokens, ms), baselines: { tfjs: tfStep, cpu: cpuStep },
  });

  const lstmStep = fusegradStep(lstm, shape);
  const lstmTime = await measure(lstmStep.run, gpuSync, options);
  lstmStep.dispose();
  const cpuLstm = await onCpu(() => fusegradStep(lstm, shape), { warmup: 1, samples: 2 });
  addRow({
    group: 'training', workload: `LSTM step (${shape.layers} layers, hidden ${shape.dim}, batch ${shape.batch} x ${shape.context})`,
    ms: lstmTime.ms, throughput: tokensPerSecond(tokens, lstmTime.ms),
    baselines: { tfjs: { ms: null, skipped: 'no TF.js LSTM baseline' }, cpu: cpuLstm },
  });
}

// ---- dispatch overhead ----

interface DispatchRunner {
  enqueue: (count: number) => void;
  sync: () => Promise<void>;
}

/**
 * Microseconds per small op inside one batch, for each runner: the slope between runs of `few` and `many`
 * adds of 64-element tensors, each run ended by a synchronization, so the fixed cost of the
 * synchronization cancels. Runners take turns within every sample, so that a burst of load on the machine
 * hits them alike, and the median slope of 21 samples is reported.
 */
async function perOpMicroseconds(runners: DispatchRunner[]): Promise<number[]> {
  const [few, many] = [200, 1000];
  const time = async (runner: DispatchRunner, count: number) => {
    const start = performance.now();
    runner.enqueue(count);
    await runner.sync();
    return performance.now() - start;
  };
  for (const runner of runners) await time(runner, many);
  const slopes: number[][] = runners.map(() => []);
  for (let s = 0; s < 21; s++) {
    for (const [k, runner] of runners.entries()) {
      const short = await time(runner, few);
      const long = await time(runner, many);
      slopes[k].push(((long - short) / (many - few)) * 1000);
    }
  }
  return slopes.map(median);
}

async function benchDispatch(tfjs: TfjsBaseline | null, tfjsReason: string): Promise<number> {
  log('dispatch overhead');
  const a = fg.randn([64]);
  const b = fg.randn([64]);
  const runners: DispatchRunner[] = [{
    enqueue: (count) => {
      for (let i = 0; i < count; i++) a.add(b).dispose();
    },
    sync: gpuSync,
  }];
  const tfTensors = tfjs ? [tfjs.tf.randomNormal([64]), tfjs.tf.randomNormal([64])] : [];
  if (tfjs) {
    const [ta, tb] = tfTensors;
    runners.push({
      enqueue: (count) => {
        for (let i = 0; i < count; i++) tfjs.tf.add(ta, tb).dispose();
      },
      sync: tfjs.sync,
    });
  }
  const [fgMicros, tfMicros] = await perOpMicroseconds(runners);
  for (const t of [a, b, ...tfTensors]) t.dispose();
  addRow({
    group: 'dispatch', workload: 'add of 64 elements inside a batch (µs per op in the ms columns)', ms: fgMicros,
    throughput: `${Math.round(1e6 / fgMicros)} ops/s`, baselines: { tfjs: tfMicros === undefined ? { ms: null, skipped: tfjsReason } : { ms: tfMicros } },
  });
  return fgMicros;
}

// ---- report ----

function describeCpu(): string {
  let model = cpus()[0]?.model ?? 'unknown CPU';
  try {
    model = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1].trim() ?? model;
  } catch {
    // lscpu is missing on some systems, so the model from os.cpus() is used instead.
  }
  return `${model}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`;
}

function cell(b: Baseline | undefined, ms: number): string {
  if (!b) return '';
  if (b.ms === null) return '-';
  return `${b.ms.toFixed(2)} (${(b.ms / ms).toFixed(2)}x)`;
}

function formatTable(): string {
  const lines = [
    '| workload | fusegrad WebGPU ms | throughput | TF.js WebGPU ms (ratio) | copy ms (ratio) | fusegrad CPU ms (ratio) | unfused ms (ratio) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.workload} | ${r.ms.toFixed(2)} | ${r.throughput} | ${cell(r.baselines.tfjs, r.ms)} | ${cell(r.baselines.copy, r.ms)} | ${cell(r.baselines.cpu, r.ms)} | ${cell(r.baselines.unfused, r.ms)} |`);
  }
  return lines.join('\n');
}

interface TargetCheck {
  target: string;
  value: number;
  limit: number;
  met: boolean;
}

function checkTargets(dispatchMicros: number): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const atLeast = (target: string, value: number, limit: number) => checks.push({ target, value, limit, met: value >= limit });
  for (const r of rows.filter((row) => row.group === 'matmul' && /^(256|512|1024) x/.test(row.workload))) {
    if (r.baselines.tfjs?.ms) atLeast(`matmul ${r.workload}: TF.js time / fusegrad time`, r.baselines.tfjs.ms / r.ms, 2);
  }
  const gpt = rows.find((r) => r.workload.startsWith('GPT step'));
  if (gpt?.baselines.tfjs?.ms) atLeast('GPT training step: fusegrad tokens/s / TF.js tokens/s', gpt.baselines.tfjs.ms / gpt.ms, 2);
  if (!Number.isNaN(dispatchMicros)) {
    checks.push({ target: 'dispatch overhead, µs per op inside a batch', value: dispatchMicros, limit: 40, met: dispatchMicros <= 40 });
  }
  return checks;
}

function formatTargets(checks: TargetCheck[]): string {
  return checks.map((c) => {
    const atMost = c.target.startsWith('dispatch');
    const missedBy = atMost ? c.value / c.limit - 1 : 1 - c.value / c.limit;
    const status = c.met ? 'met' : `missed by ${(missedBy * 100).toFixed(0)}%`;
    return `- ${c.target}: ${c.value.toFixed(2)} (target ${atMost ? '<=' : '>='} ${c.limit}): ${status}`;
  }).join('\n');
}


const SECTIONS = ['matmul', 'memory', 'layernorm', 'fusions', 'training', 'dispatch'];

/** Returns the sections named by `--only a,b`, or all of them without the option. */
function onlySections(): Set<string> {
  const at = process.argv.indexOf('--only');
  if (at < 0) return new Set(SECTIONS);
  const names = (process.argv[at + 1] ?? '').split(',').filter(Boolean);
  const unknown = names.filter((n) => !SECTIONS.includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(`--only: expected a comma-separated list of ${SECTIONS.join(', ')}, got ${JSON.stringify(process.argv[at + 1] ?? '')}`);
  }
  return new Set(names);
}

async function main(): Promise<void> {
  const started = performance.now();
  await fg.init({ backend: 'webgpu' });
  const adapter = getBackend('webgpu').description;
  const { baseline: tfjs, reason } = await loadTfjs();
  if (!tfjs) log(`TensorFlow.js baseline skipped: ${reason}`);

  const only = onlySections();
  if (only.has('matmul')) await benchMatmul(tfjs, reason);
  if (only.has('memory')) await benchMemoryBound(tfjs, reason);
  if (only.has('layernorm')) await benchLayerNormRows(tfjs, reason);
  if (only.has('fusions')) await benchFusionRows();
  if (only.has('training')) await benchTraining(tfjs, reason);
  const dispatchMicros = only.has('dispatch') ? await benchDispatch(tfjs, reason) : NaN;

  const date = new Date().toISOString();
  const machine = `${describeCpu()}, ${osType()} ${release()}, Node ${process.versions.node}`;
  const checks = checkTargets(dispatchMicros);
  const minutes = (performance.now() - started) / 60000;
  const report = [
    `Machine: ${machine}. Adapter: ${adapter}. Date: ${date.slice(0, 10)}. Run time: ${minutes.toFixed(1)} min.`,
    'Command: `npm run bench` (`-- --docs` also rewrites this table). Medians of 2 to 21 samples after a warm-up,',
    'each sample ended by a full synchronization (`fg.synchronize()`; for TF.js, a queue submit and',
    '`onSubmittedWorkDone()`). fusegrad and TF.js samples alternate for matmul, the GPT step and dispatch overhead,',
    'and fused and unfused versions alternate. Ratio = baseline ms / fusegrad ms, so above 1 means fusegrad is',
    'faster. The dispatch row gives µs per op instead of ms.',
    '',
    formatTable(),
    '',
    'Targets:',
    '',
    formatTargets(checks),
  ].join('\n');
  console.log(report);

  const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
  const file = `${resultsDir}${date.slice(0, 19).replace(/:/g, '-')}-${slug}.json`;
  writeFileSync(file, `${JSON.stringify({ date, adapter, machine, minutes, sections: [...only], rows, targets: checks }, null, 2)}\n`);
  log(`results written to ${file}`);
  if (process.argv.includes('--docs')) writeDocsSection('bench', 'Suite', report);

  await fg.shutdown();
  // TensorFlow.js keeps its own device alive; exit explicitly so the process ends.
  process.exit(0);
}

await main();
