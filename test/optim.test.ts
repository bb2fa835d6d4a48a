// Optimizers and lr schedules against torch.optim (1.13) fixtures from scripts/fixtures_optim.py, on the
// CPU backend in float64 and float32 and on WebGPU in float32, plus state dicts and option checks.

import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import * as fg from '../src/index.js';
import { requireWebGpu } from './helpers/setup.js';

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
