// fg.gradcheck itself: it passes correct gradients, reports a wrong one with its worst element, and
// works in float32 on WebGPU with the looser defaults.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { requireWebGpu } from './helpers/setup.js';

/** x * x with a backward that is off by a factor of 3, so gradcheck has something to catch. */
function wrongSquare(x: fg.Tensor): fg.Tensor {
  const out = fg.noGrad(() => x.mul(x));
  return Tensor.record('wrongSquare', [x], out, (g, [input]) => [g.mul(input).mul(6)], [x]);
}

describe('gradcheck', () => {
  it('passes a correct gradient in float64', async () => {
    const x = fg.tensor([0.5, -1.5, 2], { dtype: 'float64', device: 'cpu', requiresGrad: true });
    const result = await fg.gradcheck((t) => t.mul(t).exp(), [x]);
    expect(result.ok).to.equal(true);
  });

  it('reports the worst element of a wrong gradient', async () => {
    const x = fg.tensor([0.5, -1.5, 2], { dtype: 'float64', device: 'cpu', requiresGrad: true });
    const check = fg.gradcheck(wrongSquare, [x]);
    let message = '';
    await check.catch((error: Error) => (message = error.message));
    expect(message).to.match(/gradcheck: gradient of input 0 \(shape \[3\]\) is off at flat index \d+: analytic -?[\d.]+, numeric -?[\d.]+/);
  });

  it('rejects inputs that need no gradient', async () => {
    const x = fg.tensor([1, 2], { dtype: 'float64', device: 'cpu' });
    let message = '';
    await fg.gradcheck((t) => t.mul(2), [x]).catch((error: Error) => (message = error.message));
    expect(message).to.match(/no input requires grad/);
  });

  describe('float32 on WebGPU', function () {
    before(async function () {
      await requireWebGpu(this);
    });

    it('passes matmul, softmax and tanh with the float32 defaults', async () => {
      const a = fg.tensor([[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]], { device: 'webgpu', requiresGrad: true });
      const b = fg.tensor([[0.2, 0.7], [-0.5, 0.1], [0.3, -0.4]], { device: 'webgpu', requiresGrad: true });
      const result = await fg.gradcheck((x, y) => fg.nn.functional.softmax(x.matmul(y).tanh(), -1), [a, b]);
      expect(result.ok).to.equal(true);
    });

    it('catches a wrong gradient in float32 too', async () => {
      const x = fg.tensor([0.5, -1.5, 2], { device: 'webgpu', requiresGrad: true });
      let message = '';
      await fg.gradcheck(wrongSquare, [x]).catch((error: Error) => (message = error.message));
      expect(message).to.match(/gradcheck: gradient of input 0/);
    });
  });
});
