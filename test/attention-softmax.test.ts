// Tests of the fused scaledMaskedSoftmax beyond the registry's gradcheck and parity. They compare it with
// the unfused ops and check the NaN of a fully masked row in both WebGPU mappings. They also cover a grid
// too large for one dispatch dimension, float16 storage, gradients to a float mask and bad input.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { getBackend } from '../src/runtime.js';
import { expectClose, requireWebGpu, seededValues } from './helpers/setup.js';

const F = fg.nn.functional;

function randomTensor(shape: number[], seed: number, options: { dtype?: fg.DType; device?: fg.DeviceName; requiresGrad?: boolean } = {}): fg.Tensor {
  const random = seededValues(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return fg.tensor(Array.from({ length: n }, () => random() * 4 - 2), { shape, dtype: 'float32', device: 'cpu', ...options });
}

/** Builds a random bool mask that never masks the first key (the last dim's entry 0), so no row is fully masked. */
function randomMask(shape: number[], seed: number, device: fg.DeviceName): fg.Tensor {
  const random = seededValues(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const width = shape[shape.length - 1];
  return fg.tensor(Array.from({ length: n }, (_, k) => random() < 0.3 && k % width !== 0), { shape, dtype: 'bool', device });
}

/** The same function from separate ops: scale, maskedFill and add, a causal mask from arange, then softmax. */
function unfused(scores: fg.Tensor, scale: number, causal: boolean, masks: fg.Tensor[]): fg.Tensor {
  let z = scores.mul(scale);
  for (const mask of masks) z = mask.dtype === 'bool' ? z.maskedFill(mask, -Infinity) : z.add(mask);
  if (causal) {
    const [L, S] = scores.shape.slice(-2);
    const later = fg.arange(0, S, 1, { device: scores.device }).gt(fg.arange(0, L, 1, { device: scores.device }).unsqueeze(1));
    z = z.maskedFill(later, -Infinity);
  }
  return F.softmax(z, -1);
}

for (const device of ['cpu', 'webgpu'] as const) {
  describe(`scaledMaskedSoftmax on ${device}`, function () {
    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
    });

    // Shapes that reach both WebGPU mappings: few rows (a workgroup per row) and many rows (an invocation per row).
    const cases = [
      { label: 'few wide rows', shape: [1, 2, 3, 700], causal: false },
      { label: 'few rows, causal', shape: [2, 1, 5, 5], causal: true },
      { label: 'many rows, causal', shape: [3, 4, 37, 41], causal: true },
    ];
    for (const { label, shape, causal } of cases) {
      it(`matches the unfused ops: ${label}`, async () => {
        const [N, , L, S] = shape;
        const onDevice = async (t: fg.Tensor) => (device === 'cpu' ? t : t.toDevice(device));
        const scores = await onDevice(randomTensor(shape, 1, { requiresGrad: true }));
        const attnMask = await onDevice(randomTensor([L, S], 2).mul(0.5));
        const keyPadding = randomMask([N, 1, 1, S], 3, device);
        const weights = await onDevice(randomTensor(shape, 4));

        const fused = fg.scaledMaskedSoftmax(scores, { scale: 0.6, causal, mask: [attnMask, keyPadding] });
        fused.mul(weights).sum().backward();
        const fusedGrad = await scores.grad!.toArray();
        scores.grad = null;
        const reference = unfused(scores, 0.6, causal, [attnMask, keyPadding]);
        reference.mul(weights).sum().backward();

        expectClose(await fused.toArray(), await reference.toArray(), 1e-6, 0, 'y');
        expectClose(fusedGrad, await scores.grad!.toArray(), 1e-6, 0, 'd scores');
      });
    }

    it('gives NaN for fully masked rows only', async () => {
      for (const rows of [3, 600]) {
        const scores = randomTensor([rows, 4], 5, { device });
        const masked = fg.tensor(Array.from({ length: rows * 4 }, (_, k) => Math.floor(k / 4) % 2 === 1), { shape: [rows, 4], device });
        const y = Array.from(await fg.scaledMaskedSoftmax(scores, { mask: masked }).toArray());
        for (let r = 0; r < rows; r++) {
          const row = y.slice(4 * r, 4 * r + 4);
          if (r % 2 === 1) expect(row.every(Number.isNaN), `row ${r} of ${rows}: ${row}`).to.equal(true);
          else expect(row.reduce((a, b) => a + b, 0), `row ${r} of ${rows}`).to.be.closeTo(1, 1e-6);
        }
      }
    });

    it('gives a float mask its gradient', async () => {
      const scores = randomTensor([2, 3, 5], 6, { device, requiresGrad: true });
      const mask = randomTensor([3, 1], 7, { device, requiresGrad: true });
      const weights = randomTensor([2, 3, 5], 8, { device });
      fg.scaledMaskedSoftmax(scores, { scale: 1.7, mask }).mul(weights).sum().backward();
      const maskGrad = await mask.grad!.toArray();
      const scoresGrad = await scores.grad!.toArray();
      // d mask is dz summed over the broadcast dims, and d scores = scale * dz.
      const dz = Array.from(scoresGrad, (v) => v / 1.7);
      const expected = [0, 1, 2].map((i) => dz.filter((_, k) => Math.floor(k / 5) % 3 === i).reduce((a, b) => a + b, 0));
      expectClose(maskGrad, expected, 1e-6, 0, 'd mask');
    });

    it('rejects bad input with the op and the values', () => {
      const scores = randomTensor([2, 3, 4], 9, { device });
      expect(() => fg.scaledMaskedSoftmax(scores, { scale: NaN })).to.throw(RangeError, /^scaledMaskedSoftmax: scale must be a finite number, got NaN$/);
      expect(() => fg.scaledMaskedSoftmax(scores, { scale: Infinity })).to.throw(RangeError, /got Infinity/);
      expect(() => fg.scaledMaskedSoftmax(scores, { scale: '2' as unknown as number })).to.throw(RangeError, /got 2/);
      expect(() => fg.scaledMaskedSoftmax(scores, { causal: 1 as unknown as boolean })).to.throw(TypeError, /causal must be true or false, got 1/);
      expect(() => fg.scaledMaskedSoftmax(fg.ones([4], { device }), { causal: true })).to.throw(/causal mask needs scores of at least 2 dims .* got shape \[4\]/);
      expect(() => fg.scaledMaskedSoftmax(fg.tensor(1, { device }))).to.throw(/at least one dim/);
      expect(() => fg.scaledMaskedSoftmax(fg.ones([2, 3], { dtype: 'int32', device }))).to.throw(TypeError, /floating-point scores, got int32/);
      expect(() => fg.scaledMaskedSoftmax(scores, { mask: fg.ones([3, 3], { device }) })).to.throw(/mask of shape \[3, 3\] does not broadcast to the scores' shape \[2, 3, 4\]/);
      expect(() => fg.scaledMaskedSoftmax(scores, { mask: fg.ones([5, 2, 3, 4], { device }) })).to.throw(/mask of shape \[5, 2, 3, 4\] does not broadcast/);
      expect(() => fg.scaledMaskedSoftmax(scores, { mask: fg.ones([4], { dtype: 'int32', device }) })).to.throw(TypeError, /mask must be bool \(true = masked\) or floating point .* got int32/);
      const three = [fg.zeros([4], { device }), fg.zeros([4], { device }), fg.zeros([4], { device })];
      expect(() => fg.scaledMaskedSoftmax(scores, { mask: three })).to.throw(RangeError, /at most 2 masks, got 3/);
      expect(() => fg.scaledMaskedSoftmax(scores, { mask: [fg.zeros([4], { device }), fg.zeros([2], { device })] })).to.throw(/mask 1 of shape \[2\]/);
      const elsewhere = device === 'cpu' ? 'webgpu' : 'cpu';
      if (elsewhere === 'cpu' || fg.hasWebGpu()) {
        expect(() => fg.scaledMaskedSoftmax(scores, { mask: fg.zeros([4], { device: elsewhere }) })).to.throw(/mask is on '.*' but the scores are on/);
      }
    });
  });
}

describe('scaledMaskedSoftmax on WebGPU only', function () {
  before(async function () {
    await requireWebGpu(this);
  });

  it('covers every row of a grid folded into 2-D', async () => {
    // More rows than one dispatch dimension of invocation-per-row workgroups can hold.
    const workgroupSize = (getBackend('webgpu') as unknown as { workgroupSize: number }).workgroupSize;
    const rows = 65535 * workgroupSize + 3;
    const scores = fg.zeros([rows, 2], { device: 'webgpu', requiresGrad: true });
    const y = fg.scaledMaskedSoftmax(scores, { scale: 2 });
    y.mul(fg.tensor([1, 3], { device: 'webgpu' })).sum().backward();
    const values = await y.toArray();
    const grads = await scores.grad!.toArray();
    // y = 0.5 everywhere, and d scores = 2 * 0.5 * ([1, 3] - 2) = [-1, 1] in every row.
    let wrong = 0;
    for (let r = 0; r < rows; r++) {
      if (values[2 * r] !== 0.5 || values[2 * r + 1] !== 0.5 || grads[2 * r] !== -1 || grads[2 * r + 1] !== 1) wrong++;
    }
    expect(wrong, `rows with wrong values out of ${rows}`).to.equal(0);
    y.dispose();
    scores.dispose();
  });

  it('stores float16 and computes in f32', async function () {
    if (!getBackend('webgpu').supportsDType('float16')) this.skip();
    const base = randomTensor([300, 9], 10);
    const mask = randomTensor([9], 11);
    const half = (await base.toDevice('webgpu')).to('float16');
    const halfMask = (await mask.toDevice('webgpu')).to('float16');
    const y16 = fg.scaledMaskedSoftmax(half, { scale: 0.5, causal: true, mask: halfMask });
    expect(y16.dtype).to.equal('float16');
    const y32 = fg.scaledMaskedSoftmax((await half.toDevice('cpu')).to('float32'), { scale: 0.5, causal: true, mask: (await halfMask.toDevice('cpu')).to('float32') });
    expectClose(await y16.toArray(), await y32.toArray(), 2e-3, 0, 'float16 y');
  });
});
