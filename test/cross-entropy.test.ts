// The fused crossEntropy beyond the registry samples: what backward keeps, float16 storage on WebGPU,
// both WebGPU row mappings on wider inputs, and errors for invalid options.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { getBackend } from '../src/runtime.js';
import { expectClose, requireWebGpu, seededValues } from './helpers/setup.js';

const F = fg.nn.functional;

/** Logits and targets from a seed, with every `ignoreEvery`-th target set to -100. */
function makeData(rows: number, classes: number, seed: number, ignoreEvery = 0): { logits: number[]; targets: number[] } {
  const random = seededValues(seed);
  const logits = Array.from({ length: rows * classes }, () => 4 * random() - 2);
  const targets = Array.from({ length: rows }, (_, i) => (ignoreEvery > 0 && i % ignoreEvery === 0 ? -100 : Math.floor(random() * classes)));
  return { logits, targets };
}

/** Runs crossEntropy forward and backward on one device and returns the loss and the gradient of the logits. */
async function lossAndGrad(
  device: fg.DeviceName, dtype: fg.DType, rows: number, classes: number, options: fg.nn.functional.CrossEntropyOptions, seed: number,
): Promise<{ loss: Float32Array | Float64Array; grad: Float32Array | Float64Array }> {
  const data = makeData(rows, classes, seed, 5);
  const x = fg.tensor(data.logits, { shape: [rows, classes], device, dtype, requiresGrad: true });
  const target = fg.tensor(data.targets, { shape: [rows], device, dtype: 'int32' });
  const out = F.crossEntropy(x, target, options);
  out.sum().backward();
  const loss = Float64Array.from(await out.toArray());
  const grad = Float64Array.from(await x.grad!.toArray());
  for (const t of [x, target, out]) t.dispose();
  return { loss, grad };
}

describe('crossEntropy: saved tensors', () => {
  it('keeps logits, targets and lse only', () => {
    const x = fg.randn([6, 5], { device: 'cpu', requiresGrad: true });
    const target = fg.tensor([0, 1, 2, 3, 4, -100], { device: 'cpu', dtype: 'int32' });
    const none = F.crossEntropy(x, target, { reduction: 'none' });
    // float32: logits [6, 5], targets [6] and lse [6].
    expect(none.gradFn!.savedBytes).to.deep.equal([6 * 5 * 4, 6 * 4, 6 * 4]);
    const mean = F.crossEntropy(x, target);
    // 'mean' also keeps the count of rows that are not ignored.
    expect(mean.gradFn!.savedBytes).to.deep.equal([6 * 5 * 4, 6 * 4, 6 * 4, 4]);
    for (const t of [x, target, none, mean]) t.dispose();
  });

  it('saves a permuted view, not a copy', () => {
    const x = fg.randn([2, 4, 3], { device: 'cpu', requiresGrad: true });
    const target = fg.tensor([0, 1, 2, 3, 0, 1], { shape: [2, 3], device: 'cpu', dtype: 'int32' });
    const before = fg.memory('cpu').liveBytes;
    const out = F.crossEntropy(x, target, { reduction: 'sum' });
    // New storage: the scalar loss, plus the lse [6] that backward keeps.
    expect(fg.memory('cpu').liveBytes - before).to.equal(4 + 6 * 4);
    for (const t of [x, target, out]) t.dispose();
  });
});

describe('crossEntropy on WebGPU against the CPU backend', function () {
  before(async function () {
    await requireWebGpu(this);
  });

  // Rows at or above the workgroup size take one invocation each; fewer rows take a workgroup each.
  const cases: [string, number, number, fg.nn.functional.CrossEntropyOptions][] = [
    ['many long rows, mean', 300, 257, {}],
    ['many rows, smoothing, none', 513, 33, { labelSmoothing: 0.15, reduction: 'none' }],
    ['few long rows, smoothing', 5, 1031, { labelSmoothing: 0.05 }],
    ['one row wider than a workgroup', 1, 700, { reduction: 'sum' }],
  ];
  for (const [name, rows, classes, options] of cases) {
    it(name, async () => {
      const cpu = await lossAndGrad('cpu', 'float32', rows, classes, options, rows + classes);
      const gpu = await lossAndGrad('webgpu', 'float32', rows, classes, options, rows + classes);
      expectClose(gpu.loss, cpu.loss, 1e-5, 1e-4, 'loss');
      expectClose(gpu.grad, cpu.grad, 1e-6, 1e-3, 'grad');
    });
  }

  it('stores float16 and computes in f32', async function () {
    if (!getBackend('webgpu').supportsDType('float16')) this.skip();
    for (const [rows, classes] of [[300, 37], [3, 301]]) {
      const options = { labelSmoothing: 0.1, reduction: 'none' as const };
      const cpu = await lossAndGrad('cpu', 'float16', rows, classes, options, classes);
      const gpu = await lossAndGrad('webgpu', 'float16', rows, classes, options, classes);
      // float16 keeps about 3 decimal digits, so results may differ by one rounding step of the stored values.
      expectClose(gpu.loss, cpu.loss, 2e-3, 2e-3, `loss [${rows}, ${classes}]`);
      expectClose(gpu.grad, cpu.grad, 1e-4, 2e-3, `grad [${rows}, ${classes}]`);
    }
  });

  it('gives NaN and zero gradients when every row is ignored', async () => {
    const x = fg.randn([300, 4], { device: 'webgpu', requiresGrad: true });
    const target = fg.full([300], -100, { device: 'webgpu', dtype: 'int32' });
    const loss = F.crossEntropy(x, target);
    loss.backward();
    expect(Number.isNaN(await loss.item())).to.equal(true);
    expect(Array.from(await x.grad!.toArray()).every((v) => v === 0)).to.equal(true);
    for (const t of [x, target, loss]) t.dispose();
  });
});

describe('crossEntropy: invalid options', () => {
  const x = () => fg.zeros([2, 3], { device: 'cpu' });
  const target = () => fg.tensor([0, 2], { device: 'cpu', dtype: 'int32' });

  it('rejects a non-integer ignoreIndex', () => {
    expect(() => F.crossEntropy(x(), target(), { ignoreIndex: 1.5 })).to.throw(RangeError, /^crossEntropy: ignoreIndex must be an int32 integer, got 1.5$/);
    expect(() => F.crossEntropy(x(), target(), { ignoreIndex: 2 ** 31 })).to.throw(RangeError, /ignoreIndex must be an int32 integer/);
  });

  it('rejects labelSmoothing outside [0, 1]', () => {
    expect(() => F.crossEntropy(x(), target(), { labelSmoothing: -0.1 })).to.throw(RangeError, /^crossEntropy: labelSmoothing must be between 0 and 1, got -0.1$/);
    expect(() => F.crossEntropy(x(), target(), { labelSmoothing: NaN })).to.throw(RangeError, /got NaN$/);
  });

  it('rejects an unknown reduction', () => {
    expect(() => F.crossEntropy(x(), target(), { reduction: 'avg' as 'mean' })).to.throw(TypeError, /^crossEntropy: reduction must be 'mean', 'sum' or 'none', got "avg"$/);
  });

  it('rejects a target of the wrong shape', () => {
    const wrong = fg.tensor([0, 1, 2], { device: 'cpu', dtype: 'int32' });
    expect(() => F.crossEntropy(x(), wrong)).to.throw(/^crossEntropy: target of shape \[3\] does not match input \[2, 3\]; expected \[2\] of class indices$/);
  });
});
