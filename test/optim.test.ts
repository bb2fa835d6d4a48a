// Optimizers and lr schedules against torch.optim (1.13) fixtures from scripts/fixtures_optim.py, on the
// CPU backend in float64 and float32 and on WebGPU in float32, plus state dicts and option checks.

import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import * as fg from '../src/index.js';
import { requireWebGpu, seededValues } from './helpers/setup.js';
import type { AdamStepOptions, AdamStepTarget } from '../src/backends/backend.js';
import type { WebGpuBackend } from '../src/backends/webgpu/webgpu-backend.js';
import { adamParamsPerDispatch } from '../src/backends/webgpu/optim.js';
import { getBackend } from '../src/runtime.js';

interface OptimCase {
  name: string;
  optimizer: 'SGD' | 'Adam' | 'AdamW' | 'StepLR';
  options: Record<string, unknown>;
  groups: { params: number[]; options: Record<string, unknown> }[] | null;
  params: { shape: number[]; values: number[] }[];
  /** grads[step][param], null where the parameter has no gradient at that step. */
  grads: (number[] | null)[][];
  /** expected[step][param]: the parameter after that step. */
  expected: number[][][];
  lrs?: number[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/optim.json', import.meta.url), 'utf8')) as { torch: string; cases: OptimCase[] };
const optimizerCases = fixture.cases.filter((c) => c.optimizer !== 'StepLR');

type AnyOptimizer = fg.optim.SGD | fg.optim.Adam | fg.optim.AdamW;

function makeOptimizer(c: OptimCase, params: fg.Tensor[]): AnyOptimizer {
  const input = c.groups
    ? c.groups.map((g) => ({ params: g.params.map((i) => params[i]), ...g.options }))
    : params;
  if (c.optimizer === 'SGD') return new fg.optim.SGD(input as fg.Tensor[], c.options as { lr: number });
  if (c.optimizer === 'Adam') return new fg.optim.Adam(input as fg.Tensor[], c.options);
  return new fg.optim.AdamW(input as fg.Tensor[], c.options);
}

function makeParams(c: OptimCase, dtype: fg.DType, device: fg.DeviceName): fg.Tensor[] {
  return c.params.map((p) => fg.tensor(p.values, { shape: p.shape, dtype, device, requiresGrad: true }));
}

function setGrads(c: OptimCase, step: number, params: fg.Tensor[]): void {
  params.forEach((p, i) => {
    p.grad?.dispose();
    const g = c.grads[step][i];
    p.grad = g === null ? null : fg.tensor(g, { shape: [...p.shape], dtype: p.dtype, device: p.device });
  });
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], rtol: number, atol: number, label: string): void {
  expect(actual.length, `${label}: element count`).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    if (!(error <= atol + rtol * Math.abs(expected[i]))) {
      expect.fail(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

async function expectParams(c: OptimCase, step: number, params: fg.Tensor[], rtol: number, atol: number): Promise<void> {
  for (let i = 0; i < params.length; i++) {
    expectClose(await params[i].toArray(), c.expected[step][i], rtol, atol, `${c.name}, step ${step + 1}, param ${i}`);
  }
}

function release(params: fg.Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.dispose();
  }
}

const RUNS: { label: string; dtype: fg.DType; device: fg.DeviceName; rtol: number; atol: number }[] = [
  { label: 'cpu float64', dtype: 'float64', device: 'cpu', rtol: 1e-9, atol: 1e-10 },
  { label: 'cpu float32', dtype: 'float32', device: 'cpu', rtol: 1e-5, atol: 1e-5 },
  { label: 'webgpu float32', dtype: 'float32', device: 'webgpu', rtol: 1e-5, atol: 1e-5 },
];

for (const run of RUNS) {
  describe(`optim against torch ${fixture.torch} (${run.label})`, function () {
    before(async function () {
      if (run.device === 'webgpu') await requireWebGpu(this);
    });

    for (const c of optimizerCases) {
      it(c.name, async function () {
        const params = makeParams(c, run.dtype, run.device);
        const optimizer = makeOptimizer(c, params);
        for (let step = 0; step < c.grads.length; step++) {
          setGrads(c, step, params);
          optimizer.step();
          await expectParams(c, step, params, run.rtol, run.atol);
        }
        optimizer.zeroGrad();
        release(params);
      });
    }

    it('state dict resumes mid-run', async function () {
      for (const c of optimizerCases.filter((x) => x.name.includes('AMSGrad') || x.name.includes('Nesterov'))) {
        const params = makeParams(c, run.dtype, run.device);
        const first = makeOptimizer(c, params);
        for (let step = 0; step < 2; step++) {
          setGrads(c, step, params);
          first.step();
        }
        const second = makeOptimizer(c, params);
        second.loadStateDict(first.stateDict());
        for (let step = 2; step < c.grads.length; step++) {
          setGrads(c, step, params);
          second.step();
          await expectParams(c, step, params, run.rtol, run.atol);
        }
        release(params);
      }
    });
  });
}

describe('optim behaviour', function () {
  const cpu = { device: 'cpu' as const, requiresGrad: true };

  it('zeroGrad clears or zeroes gradients', async function () {
    const p = fg.tensor([1, 2, 3], cpu);
    const optimizer = new fg.optim.SGD([p], { lr: 0.1 });
    p.grad = fg.tensor([1, 1, 1], { device: 'cpu' });
    optimizer.zeroGrad(false);
    expect(Array.from(await p.grad.toArray())).to.deep.equal([0, 0, 0]);
    optimizer.zeroGrad();
    expect(p.grad).to.equal(null);
  });

  it('step skips parameters without gradient', async function () {
    const a = fg.tensor([1, 2], cpu);
    const b = fg.tensor([3, 4], cpu);
    const optimizer = new fg.optim.Adam([a, b], { lr: 0.5 });
    a.grad = fg.tensor([1, -1], { device: 'cpu' });
    optimizer.step();
    expect(Array.from(await b.toArray())).to.deep.equal([3, 4]);
    expect(optimizer.state.has(b)).to.equal(false);
    expect(optimizer.state.get(a)?.step).to.equal(1);
  });

  it('trains a linear fit with AdamW', async function () {
    const w = fg.tensor([[0, 0]], cpu);
    const optimizer = new fg.optim.AdamW([w], { lr: 0.1, weightDecay: 0 });
    const x = fg.tensor([[1, 2], [3, -1], [-2, 0.5], [0, 1]], { device: 'cpu' });
    const y = fg.tensor([[5], [1], [-1], [2]], { device: 'cpu' });
    let loss = Infinity;
    for (let step = 0; step < 300; step++) {
      loss = await fg.tidy(() => {
        const l = fg.nn.functional.mseLoss(x.matmul(w.t()), y);
        optimizer.zeroGrad();
        l.backward();
        optimizer.step();
        return l;
      }).item();
    }
    expect(loss).to.be.below(1e-4);
    const [w0, w1] = Array.from(await w.toArray());
    expect(w0).to.be.closeTo(1, 1e-2);
    expect(w1).to.be.closeTo(2, 1e-2);
  });

  it('state survives fg.tidy and memory stays flat', async function () {
    const p = fg.randn([64, 64], cpu);
    const optimizer = new fg.optim.Adam([p], { lr: 1e-3, amsgrad: true });
    const stepOnce = () => fg.tidy(() => {
      p.grad?.dispose();
      p.grad = fg.keep(fg.ones([64, 64], { device: 'cpu' }));
      optimizer.step();
    });
    stepOnce();
    const before = fg.memory('cpu').liveBytes;
    for (let i = 0; i < 20; i++) stepOnce();
    expect(fg.memory('cpu').liveBytes).to.equal(before);
    expect(optimizer.state.get(p)?.step).to.equal(21);
    expect((optimizer.state.get(p)?.expAvg as fg.Tensor).isDisposed).to.equal(false);
  });

  it('rejects invalid options', function () {
    const p = () => [fg.tensor([1], cpu)];
    expect(() => new fg.optim.Adam(p(), { lr: -1 })).to.throw('Adam: lr must be a finite number >= 0, got -1');
    expect(() => new fg.optim.Adam(p(), { betas: [0.9, 1] })).to.throw('betas must be two numbers in [0, 1)');
    expect(() => new fg.optim.AdamW(p(), { weight_decay: 0.1 } as never)).to.throw("AdamW: unknown option 'weight_decay'");
    expect(() => new fg.optim.SGD(p(), { lr: 0.1, nesterov: true })).to.throw('Nesterov momentum requires momentum > 0');
    expect(() => new fg.optim.SGD(p(), {} as never)).to.throw('options.lr is required');
    expect(() => new fg.optim.SGD([], { lr: 0.1 })).to.throw('empty parameter list');
    expect(() => new fg.optim.SGD([fg.tensor([1], { device: 'cpu' })], { lr: 0.1 })).to.throw('does not require grad');
    const shared = fg.tensor([1], cpu);
    expect(() => new fg.optim.SGD([shared, shared], { lr: 0.1 })).to.throw('appears in more than one group');
  });

  it('step rejects a gradient of the wrong shape', function () {
    const p = fg.tensor([1, 2], cpu);
    const optimizer = new fg.optim.SGD([p], { lr: 0.1 });
    p.grad = fg.tensor([1, 2, 3], { device: 'cpu' });
    expect(() => optimizer.step()).to.throw('SGD.step: a gradient of shape [3] does not match its parameter\'s shape [2]');
  });

  it('loadStateDict rejects mismatched state', function () {
    const p = fg.tensor([1, 2], cpu);
    const adam = new fg.optim.Adam([p]);
    p.grad = fg.tensor([1, 1], { device: 'cpu' });
    adam.step();
    const sgd = new fg.optim.SGD([p], { lr: 0.1 });
    expect(() => sgd.loadStateDict(adam.stateDict())).to.throw('was the state saved by another optimizer type?');
    const two = new fg.optim.Adam([{ params: [p] }, { params: [fg.tensor([1], cpu)] }]);
    expect(() => two.loadStateDict(adam.stateDict())).to.throw('the state has 1 parameter groups, but this optimizer has 2');
    const wrongShape = new fg.optim.Adam([fg.tensor([1, 2, 3], cpu)]);
    expect(() => wrongShape.loadStateDict(adam.stateDict())).to.throw("state 'expAvg' of parameter 0 has shape [2]");
  });
});

// ---- the multi-parameter Adam step ----

/** Odd sizes around workgroup boundaries, more parameters than fit one dispatch on any adapter. */
const ADAM_SHAPES: number[][] = [[1], [3], [7], [65], [257], [1000], [33, 17], [2, 3, 5], [256], [255], [4, 129]];

interface AdamVariant {
  label: string;
  optimizer: 'Adam' | 'AdamW';
  options: Partial<fg.optim.AdamOptions>;
}

const ADAM_VARIANTS: AdamVariant[] = [
  { label: 'Adam with weight decay', optimizer: 'Adam', options: { lr: 0.05, weightDecay: 0.1 } },
  { label: 'AdamW with weight decay', optimizer: 'AdamW', options: { lr: 0.05, weightDecay: 0.2, betas: [0.8, 0.95] } },
  { label: 'Adam amsgrad maximize', optimizer: 'Adam', options: { lr: 0.02, weightDecay: 0.05, amsgrad: true, maximize: true } },
  { label: 'AdamW amsgrad', optimizer: 'AdamW', options: { lr: 0.03, amsgrad: true, eps: 1e-3 } },
];

const ADAM_STEPS = 5;

/** Host values of every parameter and of its gradient at each step, from one seed; gradients have |g| >= gradFloor. */
function adamData(seed: number, gradFloor = 0): { params: number[][]; grads: number[][][] } {
  const next = seededValues(seed);
  const values = (n: number) => Array.from({ length: n }, () => 2 * next() - 1);
  const gradValues = (n: number) => values(n).map((g) => Math.sign(g) * (gradFloor + (1 - gradFloor) * Math.abs(g)));
  const counts = ADAM_SHAPES.map((shape) => shape.reduce((a, b) => a * b, 1));
  return {
    params: counts.map(values),
    grads: Array.from({ length: ADAM_STEPS }, () => counts.map(gradValues)),
  };
}

/** torch.optim.Adam and AdamW (1.13, single-tensor path) on one flat parameter, in float64 loops. */
function referenceAdam(x0: number[], grads: number[][], variant: AdamVariant): number[] {
  const defaults = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: variant.optimizer === 'AdamW' ? 1e-2 : 0, amsgrad: false, maximize: false };
  const o = { ...defaults, ...variant.options };
  const [beta1, beta2] = o.betas;
  const x = [...x0];
  const m = x.map(() => 0);
  const v = x.map(() => 0);
  const vmax = x.map(() => 0);
  grads.forEach((g, index) => {
    const t = index + 1;
    for (let i = 0; i < x.length; i++) {
      let d = o.maximize ? -g[i] : g[i];
      if (variant.optimizer === 'Adam') d += o.weightDecay * x[i];
      else x[i] *= 1 - o.lr * o.weightDecay;
      m[i] = beta1 * m[i] + (1 - beta1) * d;
      v[i] = beta2 * v[i] + (1 - beta2) * d * d;
      vmax[i] = Math.max(vmax[i], v[i]);
      const second = o.amsgrad ? vmax[i] : v[i];
      const denom = Math.sqrt(second) / Math.sqrt(1 - beta2 ** t) + o.eps;
      x[i] -= (o.lr / (1 - beta1 ** t)) * (m[i] / denom);
    }
  });
  return x;
}

/** Runs ADAM_STEPS optimizer steps over ADAM_SHAPES on one device and returns the parameters' values. */
async function runAdam(variant: AdamVariant, dtype: fg.DType, device: fg.DeviceName, gradFloor = 0): Promise<number[][]> {
  const data = adamData(7, gradFloor);
  const params = ADAM_SHAPES.map((shape, i) => fg.tensor(data.params[i], { shape, dtype, device, requiresGrad: true }));
  const Optimizer = variant.optimizer === 'Adam' ? fg.optim.Adam : fg.optim.AdamW;
  const optimizer = new Optimizer(params, variant.options);
  for (let step = 0; step < ADAM_STEPS; step++) {
    params.forEach((p, i) => {
      p.grad?.dispose();
      p.grad = fg.tensor(data.grads[step][i], { shape: [...p.shape], dtype, device });
    });
    optimizer.step();
  }
  const out = await Promise.all(params.map(async (p) => Array.from(await p.toArray())));
  optimizer.zeroGrad();
  for (const s of optimizer.state.values()) for (const value of Object.values(s)) if (value instanceof fg.Tensor) value.dispose();
  release(params);
  return out;
}

describe('Adam multi-parameter step (cpu)', function () {
  for (const variant of ADAM_VARIANTS) {
    it(`float64 matches torch formulas: ${variant.label}`, async function () {
      const data = adamData(7);
      const actual = await runAdam(variant, 'float64', 'cpu');
      ADAM_SHAPES.forEach((shape, i) => {
        const expected = referenceAdam(data.params[i], data.grads.map((g) => g[i]), variant);
        expectClose(actual[i], expected, 1e-12, 1e-14, `${variant.label}, param ${i} of shape [${shape}]`);
      });
    });
  }

  it('strided gradients and parameters match contiguous ones', async function () {
    const next = seededValues(3);
    const base = Array.from({ length: 35 }, () => next() - 0.5);
    const gradValues = Array.from({ length: 3 * 35 }, () => next() - 0.5);
    // The parameter is a transposed leaf; its gradient is a transposed view at an offset of a larger storage.
    const strided = fg.tensor(base, { shape: [5, 7], dtype: 'float64', device: 'cpu' }).t().requiresGrad_();
    const plain = fg.tensor(base, { shape: [5, 7], dtype: 'float64', device: 'cpu' }).t().contiguous().requiresGrad_();
    const big = fg.tensor(gradValues, { shape: [3, 5, 7], dtype: 'float64', device: 'cpu' });
    const a = new fg.optim.AdamW([strided], { lr: 0.1, amsgrad: true });
    const b = new fg.optim.AdamW([plain], { lr: 0.1, amsgrad: true });
    for (let step = 0; step < 3; step++) {
      strided.grad = big.narrow(0, step, 1).squeeze(0).t();
      plain.grad = big.narrow(0, step, 1).squeeze(0).t().contiguous();
      a.step();
      b.step();
    }
    expect(strided.isContiguous()).to.equal(false);
    expectClose(await strided.toArray(), Array.from(await plain.toArray()), 0, 0, 'strided parameter');
  });

  it('rejects invalid targets', function () {
    const cpu = getBackend('cpu');
    const view = (t: fg.Tensor) => t.asView('test');
    const h: AdamStepOptions = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, amsgrad: false, maximize: false };
    const x = fg.zeros([4], { device: 'cpu' });
    const target = (changes: Partial<AdamStepTarget>): AdamStepTarget => ({
      param: view(x), grad: view(fg.ones([4], { device: 'cpu' })), expAvg: view(fg.zeros([4], { device: 'cpu' })),
      expAvgSq: view(fg.zeros([4], { device: 'cpu' })), maxExpAvgSq: null, step: 1, ...changes,
    });
    expect(() => cpu.adamStep([target({ grad: view(fg.ones([2, 2], { device: 'cpu' }).t()) })], h)).to.throw('adamStep: parameter 0 (shape [4]): grad must be contiguous');
    expect(() => cpu.adamStep([target({ grad: view(fg.ones([5], { device: 'cpu' })) })], h)).to.throw('grad has 5 elements, expected 4');
    expect(() => cpu.adamStep([target({ expAvg: view(fg.zeros([4], { device: 'cpu', dtype: 'float16' })) })], h)).to.throw('expAvg is float16 but the parameter is float32');
    expect(() => cpu.adamStep([target({ expAvgSq: view(x) })], h)).to.throw('must not share a storage');
    expect(() => cpu.adamStep([target({ step: 0 })], h)).to.throw('step must be a positive integer, got 0');
    expect(() => cpu.adamStep([target({})], { ...h, amsgrad: true })).to.throw('amsgrad needs maxExpAvgSq');
  });

  it('step leaves cpu memory flat', async function () {
    const params = ADAM_SHAPES.map((shape) => fg.randn(shape, { device: 'cpu', requiresGrad: true }));
    const optimizer = new fg.optim.Adam(params, { amsgrad: true, weightDecay: 0.1 });
    for (const p of params) p.grad = fg.onesLike(p);
    optimizer.step();
    const before = fg.memory('cpu').liveBytes;
    for (let i = 0; i < 4; i++) optimizer.step();
    expect(fg.memory('cpu').liveBytes).to.equal(before);
    optimizer.zeroGrad();
    release(params);
  });
});

describe('Adam multi-parameter step (webgpu)', function () {
  before(async function () {
    await requireWebGpu(this);
  });

  const gpu = () => getBackend('webgpu') as WebGpuBackend;

  for (const variant of ADAM_VARIANTS) {
    it(`matches cpu after ${ADAM_STEPS} steps: ${variant.label}`, async function () {
      const expected = await runAdam(variant, 'float32', 'cpu');
      const actual = await runAdam(variant, 'float32', 'webgpu');
      ADAM_SHAPES.forEach((shape, i) => expectClose(actual[i], expected[i], 1e-5, 1e-6, `${variant.label}, param ${i} of shape [${shape}]`));
    });
  }

  it('float16 matches cpu float16', async function () {
    if (!gpu().hasF16) this.skip();
    // float16 moments underflow for tiny gradients (v < 6e-8 becomes 0 and m / eps explodes), where the two
    // backends may round differently, so the gradients here stay above 0.25 and beta2 is 0.99.
    const variant: AdamVariant = { label: 'float16', optimizer: 'AdamW', options: { lr: 0.02, betas: [0.9, 0.99], amsgrad: true, maximize: true } };
    const expected = await runAdam(variant, 'float16', 'cpu', 0.25);
    const actual = await runAdam(variant, 'float16', 'webgpu', 0.25);
    const full = await runAdam(variant, 'float32', 'cpu', 0.25);
    ADAM_SHAPES.forEach((shape, i) => {
      // Both store m, v and x as float16 after each step, but WGSL lets an f32-to-f16 conversion round either way,
      // so a value may end a few float16 steps (4.9e-4 near 1) from the CPU's round-to-nearest result after 5 steps.
      expectClose(actual[i], expected[i], 2e-3, 2e-3, `float16 param ${i} of shape [${shape}]`);
      expectClose(actual[i], full[i], 5e-3, 5e-3, `float16 against float32, param ${i}`);
    });
  });

  it('uses ceil(params / group size) dispatches', async function () {
    const backend = gpu();
    const maxBuffers = backend.device.limits.maxStorageBuffersPerShaderStage;
    for (const amsgrad of [false, true]) {
      const params = ADAM_SHAPES.map((shape) => fg.randn(shape, { device: 'webgpu', requiresGrad: true }));
      const optimizer = new fg.optim.AdamW(params, { amsgrad });
      for (const p of params) p.grad = fg.onesLike(p);
      optimizer.step();
      const before = backend.dispatchCount;
      optimizer.step();
      const groupSize = adamParamsPerDispatch(maxBuffers, amsgrad);
      expect(backend.dispatchCount - before, `amsgrad ${amsgrad}, ${groupSize} parameters per dispatch`).to.equal(Math.ceil(ADAM_SHAPES.length / groupSize));
      optimizer.zeroGrad();
      release(params);
    }
  });

  it('parameters per dispatch follow the storage buffer limit', function () {
    expect(adamParamsPerDispatch(16, false)).to.equal(4);
    expect(adamParamsPerDispatch(16, true)).to.equal(3);
    expect(adamParamsPerDispatch(8, false)).to.equal(2);
    expect(adamParamsPerDispatch(8, true)).to.equal(1);
    // The 256-byte uniform slot describes at most 7 parameters (4 with amsgrad).
    expect(adamParamsPerDispatch(1000, false)).to.equal(7);
    expect(adamParamsPerDispatch(1000, true)).to.equal(4);
    expect(() => adamParamsPerDispatch(4, true)).to.throw('fewer than the 5 one parameter needs');
  });

  it('every grouping matches cpu', async function () {
    const backend = gpu();
    const next = seededValues(11);
    const counts = ADAM_SHAPES.map((shape) => shape.reduce((a, b) => a * b, 1));
    const data = counts.map((n) => Array.from({ length: 5 * n }, () => next() - 0.5));
    const h: AdamStepOptions = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, decoupled: false, amsgrad: true, maximize: false };
    // Each target's five tensors sit at offsets 0..4 n of one storage on the CPU, but in storages of their own on
    // WebGPU, where the grad sits at an offset inside a larger buffer.
    const makeTargets = (device: fg.DeviceName) => {
      const held: fg.Tensor[] = [];
      const targets = data.map((values, k): AdamStepTarget => {
        const n = counts[k];
        const part = (i: number) => {
          const t = fg.tensor(values.slice(i * n, (i + 1) * n).map((x) => (i >= 3 ? Math.abs(x) : x)), { device });
          held.push(t);
          return t.asView('test');
        };
        const padded = fg.tensor([0, 0, 0, ...values.slice(n, 2 * n)], { device });
        held.push(padded);
        const grad = { ...padded.asView('test'), shape: [n], offset: 3 };
        return { param: part(0), grad, expAvg: part(2), expAvgSq: part(3), maxExpAvgSq: part(4), step: 1 + (k % 3) };
      });
      return { targets, held };
    };
    const cpu = makeTargets('cpu');
    getBackend('cpu').adamStep(cpu.targets, h);
    const expected = await Promise.all(cpu.targets.map((t) => getBackend('cpu').read(t.param)));
    const limit = adamParamsPerDispatch(backend.device.limits.maxStorageBuffersPerShaderStage, true);
    for (let size = 1; size <= limit; size++) {
      const run = makeTargets('webgpu');
      const before = backend.dispatchCount;
      backend.adamStep(run.targets, h, { paramsPerDispatch: size });
      expect(backend.dispatchCount - before, `dispatches with ${size} per dispatch`).to.equal(Math.ceil(counts.length / size));
      for (let k = 0; k < counts.length; k++) {
        expectClose(await backend.read(run.targets[k].param), Array.from(expected[k]), 1e-5, 1e-6, `${size} per dispatch, param ${k}`);
        expectClose(await backend.read(run.targets[k].maxExpAvgSq!), Array.from(await getBackend('cpu').read(cpu.targets[k].maxExpAvgSq!)), 1e-5, 1e-7, `${size} per dispatch, maxExpAvgSq ${k}`);
      }
      run.held.forEach((t) => t.dispose());
    }
    cpu.held.forEach((t) => t.dispose());
    expect(() => backend.adamStep([], h, { paramsPerDispatch: limit + 1 })).to.throw(`paramsPerDispatch must be an integer from 1 to ${limit}`);
  });

  it('strided and offset gradients match contiguous ones', async function () {
    const next = seededValues(5);
    const base = Array.from({ length: 6 * 9 }, () => next() - 0.5);
    const gradValues = Array.from({ length: 2 * 6 * 9 }, () => next() - 0.5);
    const strided = fg.tensor(base, { shape: [6, 9], device: 'webgpu', requiresGrad: true });
    const plain = fg.tensor(base, { shape: [6, 9], device: 'webgpu', requiresGrad: true });
    const big = fg.tensor(gradValues, { shape: [2, 9, 6], device: 'webgpu' });
    const a = new fg.optim.Adam([strided], { lr: 0.1, maximize: true });
    const b = new fg.optim.Adam([plain], { lr: 0.1, maximize: true });
    for (let step = 0; step < 2; step++) {
      strided.grad = big.narrow(0, step, 1).squeeze(0).t();
      plain.grad = big.narrow(0, step, 1).squeeze(0).t().contiguous();
      a.step();
      b.step();
    }
    expectClose(await strided.toArray(), Array.from(await plain.toArray()), 0, 0, 'strided gradient');
  });

  it('rejects state on another device', function () {
    const p = fg.tensor([1, 2], { device: 'webgpu', requiresGrad: true });
    const optimizer = new fg.optim.AdamW([p]);
    optimizer.state.set(p, { step: 1, expAvg: fg.zeros([2], { device: 'cpu' }), expAvgSq: fg.zeros([2], { device: 'cpu' }) });
    p.grad = fg.ones([2], { device: 'webgpu' });
    expect(() => optimizer.step()).to.throw("AdamW.step: a state tensor is on 'cpu' but its parameter is on 'webgpu'");
    release([p]);
  });

  it('liveBytes stays flat after the first step', async function () {
    const params = ADAM_SHAPES.map((shape) => fg.randn(shape, { device: 'webgpu', requiresGrad: true }));
    const optimizer = new fg.optim.AdamW(params, { amsgrad: true, maximize: true });
    for (const p of params) p.grad = fg.onesLike(p);
    optimizer.step();
    await fg.synchronize();
    const before = fg.memory('webgpu').liveBytes;
    for (let i = 0; i < 4; i++) optimizer.step();
    await fg.synchronize();
    expect(fg.memory('webgpu').liveBytes).to.equal(before);
    optimizer.zeroGrad();
    release(params);
  });

  it('updates a parameter wider than one grid row', async function () {
    const backend = gpu();
    // Enough workgroups that the grid folds into a second row, then a small parameter after it.
    const large = backend.maxWorkgroupsPerDim * backend.workgroupSize + 300;
    const params = [fg.ones([large], { device: 'webgpu', requiresGrad: true }), fg.ones([5], { device: 'webgpu', requiresGrad: true })];
    const optimizer = new fg.optim.Adam(params, { lr: 0.5 });
    for (const p of params) p.grad = fg.full([...p.shape], 2, { device: 'webgpu' });
    optimizer.step();
    // Step 1 with a constant gradient moves every element by lr * g / (|g| + eps * sqrt(1 - beta2)) = 0.5.
    for (const p of params) {
      const values = await p.toArray();
      let [min, max] = [Infinity, -Infinity];
      for (const v of values) [min, max] = [Math.min(min, v), Math.max(max, v)];
      expect(min, `min of ${p.numel} elements`).to.be.closeTo(0.5, 1e-6);
      expect(max, `max of ${p.numel} elements`).to.be.closeTo(0.5, 1e-6);
    }
    optimizer.zeroGrad();
    for (const s of optimizer.state.values()) for (const value of Object.values(s)) if (value instanceof fg.Tensor) value.dispose();
    release(params);
  });
});

describe('lr schedules', function () {
  const stepCase = fixture.cases.find((c) => c.optimizer === 'StepLR')!;

  it('StepLR matches torch', function () {
    const p = fg.tensor([0], { device: 'cpu', requiresGrad: true });
    const optimizer = new fg.optim.SGD([p], { lr: stepCase.options.lr as number });
    const scheduler = new fg.optim.StepLR(optimizer, { stepSize: stepCase.options.stepSize as number, gamma: stepCase.options.gamma as number });
    const lrs = [scheduler.getLastLr()[0]];
    for (let i = 1; i < stepCase.lrs!.length; i++) {
      optimizer.step();
      scheduler.step();
      lrs.push(scheduler.getLastLr()[0]);
    }
    expectClose(lrs, stepCase.lrs!, 1e-12, 0, 'StepLR lr');
    expect(optimizer.paramGroups[0].lr).to.equal(lrs[lrs.length - 1]);
  });

  it('WarmupCosineLR warms up then decays', function () {
    const p = fg.tensor([0], { device: 'cpu', requiresGrad: true });
    const optimizer = new fg.optim.AdamW([p], { lr: 1 });
    const scheduler = new fg.optim.WarmupCosineLR(optimizer, { warmupSteps: 4, totalSteps: 12, minLr: 0.1 });
    const lrs = [scheduler.getLastLr()[0]];
    for (let i = 0; i < 14; i++) {
      scheduler.step();
      lrs.push(optimizer.paramGroups[0].lr);
    }
    expectClose(lrs.slice(0, 4), [0.25, 0.5, 0.75, 1], 1e-12, 0, 'warmup');
    expect(lrs[4]).to.equal(1);
    expect(lrs[8]).to.be.closeTo(0.1 + 0.9 * 0.5, 1e-12);
    expect(lrs[12]).to.be.closeTo(0.1, 1e-12);
    expect(lrs[14]).to.be.closeTo(0.1, 1e-12);
    for (let i = 5; i <= 12; i++) expect(lrs[i]).to.be.below(lrs[i - 1]);
  });

  it('scheduler state dict restores the position', function () {
    const p = fg.tensor([0], { device: 'cpu', requiresGrad: true });
    const optimizer = new fg.optim.SGD([p], { lr: 1 });
    const scheduler = new fg.optim.WarmupCosineLR(optimizer, { warmupSteps: 2, totalSteps: 10 });
    for (let i = 0; i < 5; i++) scheduler.step();
    const other = new fg.optim.SGD([p], { lr: 1 });
    const restored = new fg.optim.WarmupCosineLR(other, { warmupSteps: 2, totalSteps: 10 });
    restored.loadStateDict(scheduler.stateDict());
    expect(restored.getLastLr()).to.deep.equal(scheduler.getLastLr());
    expect(other.paramGroups[0].lr).to.equal(optimizer.paramGroups[0].lr);
  });

  it('schedulers reject invalid options', function () {
    const optimizer = new fg.optim.SGD([fg.tensor([0], { device: 'cpu', requiresGrad: true })], { lr: 1 });
    expect(() => new fg.optim.StepLR(optimizer, { stepSize: 0 })).to.throw('StepLR: stepSize must be a positive integer, got 0');
    expect(() => new fg.optim.WarmupCosineLR(optimizer, { warmupSteps: 5, totalSteps: 3 })).to.throw('warmupSteps (5) must not exceed totalSteps (3)');
  });
});
