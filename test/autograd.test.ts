// Autograd behaviour on both backends: accumulation, retained graphs, skipped branches, noGrad, tidy,
// and a memory check over many training steps.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { requireWebGpu, seededValues, settleGarbage } from './helpers/setup.js';

function randomTensor(shape: number[], seed: number, device: fg.DeviceName, requiresGrad = false): fg.Tensor {
  const random = seededValues(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return fg.tensor(Array.from({ length: n }, () => random() * 2 - 1), { shape, device, requiresGrad });
}

/** One step of a two-layer MLP on a toy regression; returns the loss tensor. */
function mlpLoss(params: fg.Tensor[], x: fg.Tensor, y: fg.Tensor): fg.Tensor {
  const [w1, b1, w2, b2] = params;
  const hidden = x.matmul(w1).add(b1).tanh();
  const out = hidden.matmul(w2).add(b2);
  return fg.nn.functional.mseLoss(out, y);
}

function sgdStep(params: fg.Tensor[], lr: number): void {
  fg.noGrad(() => {
    for (const p of params) {
      p.sub_(p.grad!, lr);
      p.grad!.dispose();
      p.grad = null;
    }
  });
}

for (const device of ['cpu', 'webgpu'] as const) {
  describe(`autograd on ${device}`, function () {
    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
    });

    it('accumulates grads across backward calls', async () => {
      const x = fg.tensor([1, 2, 3], { device, requiresGrad: true });
      x.mul(x).sum().backward();
      x.mul(3).sum().backward();
      expect(Array.from(await x.grad!.toArray())).to.deep.equal([5, 7, 9]);
    });

    it('keeps .grad apart from the seed gradient', async () => {
      const x = fg.tensor([1, 2, 3, 4], { device, requiresGrad: true });
      const seed = fg.tensor([[1, 2], [3, 4]], { device });
      x.reshape([2, 2]).backward(seed);
      seed.mul_(10);
      expect(Array.from(await x.grad!.toArray())).to.deep.equal([1, 2, 3, 4]);
      expect(Array.from(await seed.toArray())).to.deep.equal([10, 20, 30, 40]);
    });

    it('keeps a gradient that arrives in another dtype', async () => {
      const x = fg.tensor([1, 2, 3], { device, requiresGrad: true });
      const y = fg.Tensor.record('halve dtype', [x], x.detach().mul(2), (g) => [g.to('float16')], []);
      y.sum().backward();
      expect(x.grad!.dtype).to.equal('float32');
      expect(Array.from(await x.grad!.toArray())).to.deep.equal([1, 1, 1]);
    });

    it('keeps the graph with retainGraph', async () => {
      const x = fg.tensor([1, -2], { device, requiresGrad: true });
      const y = x.exp().sum();
      y.backward(undefined, { retainGraph: true });
      y.backward();
      const grad = await x.grad!.toArray();
      expect(grad[0]).to.be.closeTo(2 * Math.E, 1e-5);
      expect(grad[1]).to.be.closeTo(2 * Math.exp(-2), 1e-6);
    });

    it('skips branches that need no gradient', async () => {
      const a = fg.tensor([1, 2], { device, requiresGrad: true });
      const b = fg.tensor([3, 4], { device });
      const y = a.mul(b).add(b.exp()).sum();
      y.backward();
      expect(Array.from(await a.grad!.toArray())).to.deep.equal([3, 4]);
      expect(b.grad).to.equal(null);
    });

    it('records nothing inside noGrad', () => {
      const a = fg.tensor([1, 2], { device, requiresGrad: true });
      const y = fg.noGrad(() => a.mul(2));
      expect(y.requiresGrad).to.equal(false);
      expect(y.gradFn).to.equal(null);
    });

    it('backward with an explicit gradient', async () => {
      const a = fg.tensor([[1, 2], [3, 4]], { device, requiresGrad: true });
      a.mul(a).backward(fg.tensor([[1, 0], [0, 2]], { device }));
      expect(Array.from(await a.grad!.toArray())).to.deep.equal([2, 0, 0, 16]);
    });

    it('detach cuts the graph', async () => {
      const a = fg.tensor([2], { device, requiresGrad: true });
      const y = a.mul(a.detach()).sum();
      y.backward();
      expect(await a.grad!.item()).to.equal(2);
    });

    it('tidy releases intermediates but keeps results', async () => {
      await settleGarbage();
      const before = fg.memory(device).liveBytes;
      const x = fg.randn([64, 64], { device });
      const kept = fg.tidy(() => x.mul(2).add(1).exp().sum());
      expect(await kept.item()).to.be.a('number');
      kept.dispose();
      x.dispose();
      expect(fg.memory(device).liveBytes).to.equal(before);
    });

    it('a 500-step MLP keeps liveBytes flat', async () => {
      const params = [
        randomTensor([8, 32], 1, device, true), randomTensor([32], 2, device, true),
        randomTensor([32, 1], 3, device, true), randomTensor([1], 4, device, true),
      ];
      const x = randomTensor([64, 8], 5, device);
      const y = x.sum(1, true).tanh();
      let at50 = -1;
      for (let step = 1; step <= 500; step++) {
        fg.tidy(() => {
          const loss = mlpLoss(params, x, y);
          loss.backward();
          sgdStep(params, 0.05);
        });
        if (step === 50) {
          await settleGarbage();
          at50 = fg.memory(device).liveBytes;
        }
      }
      // Before garbage collection, so that a handle leaked by the loop (and only freed by a finalizer) shows up.
      await fg.synchronize();
      expect(fg.memory(device).liveBytes).to.equal(at50);
      await settleGarbage();
      expect(fg.memory(device).liveBytes).to.equal(at50);
      for (const t of [...params, x, y]) t.dispose();
    });

    it('an MLP fits a toy problem to near-zero loss', async () => {
      fg.manualSeed(0);
      // y = sin(3 x0) * x1 on 128 points: smooth, so a tanh MLP fits it closely.
      const random = seededValues(11);
      const xs = Array.from({ length: 128 * 2 }, () => random() * 2 - 1);
      const ys = Array.from({ length: 128 }, (_, i) => Math.sin(3 * xs[2 * i]) * xs[2 * i + 1]);
      const x = fg.tensor(xs, { shape: [128, 2], device });
      const y = fg.tensor(ys, { shape: [128, 1], device });
      const params = [
        randomTensor([2, 32], 21, device, true), randomTensor([32], 22, device, true),
        randomTensor([32, 1], 23, device, true), randomTensor([1], 24, device, true),
      ];
      let first = 0;
      let last = 0;
      for (let step = 0; step < 2000; step++) {
        const loss = fg.tidy(() => {
          const l = mlpLoss(params, x, y);
          l.backward();
          sgdStep(params, 0.1);
          return l;
        });
        if (step === 0) first = await loss.item();
        if (step === 1999) last = await loss.item();
        loss.dispose();
      }
      expect(last).to.be.lessThan(first / 100);
      expect(last).to.be.lessThan(2.5e-3);
    });
  });
}
