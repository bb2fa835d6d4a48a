// The fused LayerNorm op: input checks, nn.LayerNorm, gradcheck, PyTorch fixtures, the WGSL kernels
// against the CPU backend for every row width and work mapping, determinism, saved sizes and float16.
//
// Tolerances (atol is scaled by the largest |expected| of the tensor, see helpers/fixtures.ts):
//   CPU float64 against the fixtures: rtol 1e-9, atol 1e-9 (the fixtures keep 10 significant digits).
//   float32 against the fixtures or the CPU backend: rtol 1e-4, atol 2e-5. The kernels sum a row in f32
//     in a different order than the float64 oracle, and one invocation sums up to 70001 elements.
//   float32 gradcheck on WebGPU: step 1e-2, atol 2e-3, rtol 1e-2, for the f32 rounding of the loss (about
//     1e-6 of a loss near 10, divided by the step) and the h^2 truncation of the central difference.
//   float16 against float32 from the same half-precision inputs: rtol 4e-3, atol 4e-3. Half precision
//     has a relative spacing of 2^-10, and y, dx, dweight and dbias are each rounded once to it.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import type { LayerNormKernelOptions } from '../src/backends/backend.js';
import { layerNormForward } from '../src/backends/webgpu/layernorm.js';
import { getBackend } from '../src/runtime.js';
import { roundToFloat16 } from '../src/tensor/float16.js';
import { FixtureCase, Tolerance, decodeValues, loadFixtures } from './helpers/fixtures.js';
import { requireWebGpu, seededValues } from './helpers/setup.js';

const F = fg.nn.functional;
const FLOAT32: Tolerance = { rtol: 1e-4, atol: 2e-5 };
const FLOAT16: Tolerance = { rtol: 4e-3, atol: 4e-3 };

/**
 * Passes where |actual - expected| <= atol * scale + rtol * |expected| for every element, with scale the
 * largest finite |expected| (at least 1), as in helpers/fixtures.ts. It loops instead of spreading into
 * Math.max, because rows here reach 70001 elements.
 */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: Tolerance, label: string): void {
  expect(actual.length, `${label}: element count`).to.equal(expected.length);
  let scale = 1;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i])) scale = Math.max(scale, Math.abs(expected[i]));
  const atol = tolerance.atol * scale;
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i], expected[i]];
    if (!(Math.abs(a - e) <= atol + tolerance.rtol * Math.abs(e))) {
      expect.fail(`${label}[${i}]: got ${a}, expected ${e} (rtol ${tolerance.rtol}, atol ${atol})`);
    }
  }
}

/** Seeded values near `offset` with a spread of about `scale`. */
function values(count: number, seed: number, offset = 0, scale = 1): Float64Array {
  const random = seededValues(seed);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = offset + scale * (random() * 2 - 1) * 1.7;
  return out;
}

interface Inputs {
  x: Float64Array;
  weight: Float64Array | null;
  bias: Float64Array | null;
  grad: Float64Array;
}

function makeInputs(rows: number, width: number, seed: number, affine: 'both' | 'weight' | 'none' = 'both', offset = 0): Inputs {
  return {
    x: values(rows * width, seed, offset),
    weight: affine === 'none' ? null : values(width, seed + 1, 1, 0.5),
    bias: affine === 'both' ? values(width, seed + 2) : null,
    grad: values(rows * width, seed + 3),
  };
}

interface Results {
  y: Float32Array | Float64Array;
  dx: ArrayLike<number>;
  dweight: ArrayLike<number> | null;
  dbias: ArrayLike<number> | null;
}

/** Runs layerNorm and its backward through the public op on one device. */
async function runOp(inputs: Inputs, shape: number[], normalizedShape: number[], device: fg.DeviceName, dtype: fg.DType, eps = 1e-5): Promise<Results> {
  const opts = { device, dtype, requiresGrad: true };
  const x = fg.tensor(inputs.x, { ...opts, shape });
  const weight = inputs.weight && fg.tensor(inputs.weight, { ...opts, shape: normalizedShape });
  const bias = inputs.bias && fg.tensor(inputs.bias, { ...opts, shape: normalizedShape });
  const grad = fg.tensor(inputs.grad, { device, dtype, shape });
  const y = F.layerNorm(x, normalizedShape, weight, bias, eps);
  y.backward(grad);
  const results = {
    y: (await y.toArray()) as Float32Array,
    dx: await x.grad!.toArray(),
    dweight: weight ? await weight.grad!.toArray() : null,
    dbias: bias ? await bias.grad!.toArray() : null,
  };
  for (const t of [x, weight, bias, grad, y]) {
    t?.grad?.dispose();
    t?.dispose();
  }
  return results;
}

/** Runs the backend kernels directly, where a test picks the work mapping. */
async function runKernels(inputs: Inputs, rows: number, width: number, device: fg.DeviceName, dtype: fg.DType, options: LayerNormKernelOptions = {}, eps = 1e-5): Promise<Results> {
  const backend = getBackend(device);
  const x = fg.tensor(inputs.x, { device, dtype, shape: [rows, width] });
  const weight = inputs.weight && fg.tensor(inputs.weight, { device, dtype });
  const bias = inputs.bias && fg.tensor(inputs.bias, { device, dtype });
  const grad = fg.tensor(inputs.grad, { device, dtype, shape: [rows, width] });
  const view = (t: fg.Tensor | null) => t?.asView('test') ?? null;
  const forward = backend.layerNorm(view(x)!, width, view(weight), view(bias), eps, options);
  const y = fg.Tensor.fromStorage(forward.out, [rows, width]);
  const shiftedMean = fg.Tensor.fromStorage(forward.shiftedMean, [rows]);
  const rstd = fg.Tensor.fromStorage(forward.rstd, [rows]);
  const grads = backend.layerNormBackward(view(grad)!, view(x)!, width, view(weight), view(shiftedMean)!, view(rstd)!, bias !== null, options);
  const outputs = [
    y,
    fg.Tensor.fromStorage(grads.dx, [rows, width]),
    grads.dweight && fg.Tensor.fromStorage(grads.dweight, [width]),
    grads.dbias && fg.Tensor.fromStorage(grads.dbias, [width]),
  ];
  const [yValues, dx, dweight, dbias] = await Promise.all(outputs.map((t) => t?.toArray() ?? null));
  for (const t of [x, weight, bias, grad, shiftedMean, rstd, ...outputs]) t?.dispose();
  return { y: yValues as Float32Array, dx: dx!, dweight, dbias };
}

function expectResultsClose(actual: Results, expected: Results, tolerance: Tolerance, label: string): void {
  expectClose(actual.y, expected.y, tolerance, `${label} y`);
  expectClose(actual.dx, expected.dx, tolerance, `${label} dx`);
  expect(actual.dweight === null, `${label} dweight presence`).to.equal(expected.dweight === null);
  expect(actual.dbias === null, `${label} dbias presence`).to.equal(expected.dbias === null);
  if (expected.dweight) expectClose(actual.dweight!, expected.dweight, tolerance, `${label} dweight`);
  if (expected.dbias) expectClose(actual.dbias!, expected.dbias, tolerance, `${label} dbias`);
}

function sameBits(a: ArrayLike<number> | null, b: ArrayLike<number> | null): boolean {
  if (!a || !b) return a === b;
  const fa = Float32Array.from(a);
  const fb = Float32Array.from(b);
  return Buffer.from(fa.buffer).equals(Buffer.from(fb.buffer));
}

describe('layerNorm input checks', () => {
  const cpu = { device: 'cpu' as const };

  it('rejects a normalizedShape that differs from the trailing dims', () => {
    const x = fg.randn([2, 3], cpu);
    expect(() => F.layerNorm(x, [4])).to.throw(/normalizedShape \[4\] must match the trailing dims of the input, but the input has shape \[2, 3\]/);
    expect(() => F.layerNorm(x, [2, 3, 1])).to.throw(/must match the trailing dims/);
    expect(() => F.layerNorm(x, [2])).to.throw(/pass normalizedShape \[3\]/);
  });

  it('rejects an empty or invalid normalizedShape', () => {
    const x = fg.randn([2, 3], cpu);
    expect(() => F.layerNorm(x, [])).to.throw(/non-empty array of positive integers/);
    expect(() => F.layerNorm(x, 0)).to.throw(/positive integer/);
    expect(() => F.layerNorm(x, 1.5)).to.throw(/positive integer/);
  });

  it('rejects weight and bias of the wrong shape', () => {
    const x = fg.randn([2, 3, 4], cpu);
    expect(() => F.layerNorm(x, [4], fg.ones([3], cpu))).to.throw(/weight has shape \[3\], but normalizedShape is \[4\]/);
    expect(() => F.layerNorm(x, [3, 4], fg.ones([3, 4], cpu), fg.zeros([12], cpu))).to.throw(/bias has shape \[12\], but normalizedShape is \[3, 4\]/);
  });

  it('rejects mixed dtypes, integer input and a negative eps', () => {
    const x = fg.randn([2, 4], cpu);
    expect(() => F.layerNorm(x, 4, fg.ones([4], { ...cpu, dtype: 'float64' }))).to.throw(/weight is float64 but the input is float32/);
    expect(() => F.layerNorm(fg.ones([2, 4], { ...cpu, dtype: 'int32' }), 4)).to.throw(/expects a floating-point input, got int32/);
    expect(() => F.layerNorm(x, 4, null, null, -1)).to.throw(/eps must be a finite number >= 0, got -1/);
  });

  it('accepts zero rows', async () => {
    const x = fg.zeros([0, 5], { ...cpu, requiresGrad: true });
    const weight = fg.ones([5], { ...cpu, requiresGrad: true });
    const y = F.layerNorm(x, 5, weight);
    expect(y.shape).to.deep.equal([0, 5]);
    y.sum().backward();
    expect(Array.from(await weight.grad!.toArray())).to.deep.equal([0, 0, 0, 0, 0]);
  });
});

describe('nn.LayerNorm', () => {
  it('starts with weight ones and bias zeros', async () => {
    const layer = new fg.nn.LayerNorm(6, { device: 'cpu' });
    expect(layer.normalizedShape).to.deep.equal([6]);
    expect(layer.eps).to.equal(1e-5);
    expect(Array.from(await layer.weight!.toArray())).to.deep.equal([1, 1, 1, 1, 1, 1]);
    expect(Array.from(await layer.bias!.toArray())).to.deep.equal([0, 0, 0, 0, 0, 0]);
    expect(layer.namedParameters().map(([name]) => name)).to.deep.equal(['weight', 'bias']);
    expect(Object.keys(layer.stateDict())).to.deep.equal(['weight', 'bias']);
  });

  it('has no parameters without elementwiseAffine', () => {
    const layer = new fg.nn.LayerNorm([3, 4], { elementwiseAffine: false, eps: 1e-3, device: 'cpu' });
    expect(layer.weight).to.equal(null);
    expect(layer.bias).to.equal(null);
    expect(layer.parameters()).to.deep.equal([]);
    expect(layer.eps).to.equal(1e-3);
    expect(layer.normalizedShape).to.deep.equal([3, 4]);
  });

  it('learns only the weight with bias false', () => {
    const layer = new fg.nn.LayerNorm(4, { bias: false, device: 'cpu' });
    expect(layer.bias).to.equal(null);
    expect(layer.namedParameters().map(([name]) => name)).to.deep.equal(['weight']);
  });

  it('matches the functional form and fills both gradients', async () => {
    const layer = new fg.nn.LayerNorm(5, { device: 'cpu', dtype: 'float64' });
    layer.weight!.grad = null;
    const x = fg.tensor(values(15, 3), { shape: [3, 5], device: 'cpu', dtype: 'float64' });
    const y = layer.forward(x);
    const expected = F.layerNorm(x, [5], layer.weight, layer.bias);
    expect(Array.from(await y.toArray())).to.deep.equal(Array.from(await expected.toArray()));
    y.mul(y).sum().backward();
    expect(layer.weight!.grad).to.not.equal(null);
    expect(layer.bias!.grad).to.not.equal(null);
  });

  it('rejects invalid constructor arguments', () => {
    expect(() => new fg.nn.LayerNorm(0)).to.throw(/LayerNorm: normalizedShape must be a positive integer/);
    expect(() => new fg.nn.LayerNorm([])).to.throw(/non-empty array/);
    expect(() => new fg.nn.LayerNorm(4, { eps: -1 })).to.throw(/eps must be a finite number >= 0/);
  });
});

describe('layerNorm float64 gradcheck on the CPU backend', () => {
  const cases: [string, number[], number[], 'both' | 'weight' | 'none', number][] = [
    ['affine', [3, 7], [7], 'both', 0],
    ['two trailing dims', [2, 3, 4], [3, 4], 'both', 0],
    ['weight without bias', [4, 6], [6], 'weight', 0],
    ['no affine', [3, 9], [9], 'none', 0],
    ['offset near 1e4', [3, 8], [8], 'both', 1e4],
  ];
  for (const [label, shape, normalizedShape, affine, offset] of cases) {
    it(label, async () => {
      const width = normalizedShape.reduce((a, b) => a * b, 1);
      const inputs = makeInputs(shape.reduce((a, b) => a * b, 1) / width, width, 11, affine, offset);
      const opts = { device: 'cpu' as const, dtype: 'float64' as const, requiresGrad: true };
      const leaves = [fg.tensor(inputs.x, { ...opts, shape })];
      if (inputs.weight) leaves.push(fg.tensor(inputs.weight, { ...opts, shape: normalizedShape }));
      if (inputs.bias) leaves.push(fg.tensor(inputs.bias, { ...opts, shape: normalizedShape }));
      const run = (x: fg.Tensor, w?: fg.Tensor, b?: fg.Tensor) => F.layerNorm(x, normalizedShape, w, b);
      const result = await fg.gradcheck(run, leaves, { eps: 1e-6, atol: 1e-6, rtol: 1e-5 });
      expect(result.ok).to.equal(true);
    });
  }
});

describe('layerNorm float32 gradcheck on WebGPU', function () {
  before(async function () {
    await requireWebGpu(this);
  });

  for (const [label, rows, width, affine] of [['affine', 3, 7, 'both'], ['vec4 rows, weight only', 2, 8, 'weight'], ['no affine', 2, 5, 'none']] as const) {
    it(label, async () => {
      const inputs = makeInputs(rows, width, 21, affine);
      const opts = { device: 'webgpu' as const, requiresGrad: true };
      const leaves = [fg.tensor(inputs.x, { ...opts, shape: [rows, width] })];
      if (inputs.weight) leaves.push(fg.tensor(inputs.weight, opts));
      if (inputs.bias) leaves.push(fg.tensor(inputs.bias, opts));
      const run = (x: fg.Tensor, w?: fg.Tensor, b?: fg.Tensor) => F.layerNorm(x, width, w, b);
      const result = await fg.gradcheck(run, leaves, { eps: 1e-2, atol: 2e-3, rtol: 1e-2 });
      expect(result.ok).to.equal(true);
    });
  }
});

describe('layerNorm PyTorch fixtures', () => {
  const fixtures = loadFixtures('layernorm');

  async function checkFixture(c: FixtureCase, device: fg.DeviceName, dtype: fg.DType, tolerance: Tolerance): Promise<void> {
    const args = c.args as { normalizedShape: number[]; eps: number };
    const leaves = c.inputs.map((spec) => fg.tensor(decodeValues(spec.values), { shape: spec.shape, dtype, device, requiresGrad: spec.requiresGrad }));
    const [x, ...affine] = leaves;
    const weight = c.args.weight ? affine.shift()! : null;
    const bias = c.args.bias ? affine.shift()! : null;
    const input = c.inputs[0].view.length > 0 ? x.t() : x;
    const out = F.layerNorm(input, args.normalizedShape, weight, bias, args.eps);
    expect(out.shape).to.deep.equal(c.output.shape);
    expectClose(await out.toArray(), decodeValues(c.output.values), tolerance, 'output');
    const outputWeight = fg.tensor(decodeValues(c.weight!), { shape: c.output.shape, dtype, device });
    out.mul(outputWeight).sum().backward();
    for (const [i, expected] of c.grads.entries()) {
      const grad = await leaves[i].grad!.toArray();
      expect(grad.every(Number.isFinite), `gradient of input ${i} is finite`).to.equal(true);
      expectClose(grad, decodeValues(expected!), tolerance, `gradient of input ${i}`);
    }
    for (const t of [...leaves, out, outputWeight]) {
      t.grad?.dispose();
      t.dispose();
    }
  }

  const configs = [
    { device: 'cpu' as const, dtype: 'float64' as const, tolerance: { rtol: 1e-9, atol: 1e-9 } },
    { device: 'cpu' as const, dtype: 'float32' as const, tolerance: FLOAT32 },
    { device: 'webgpu' as const, dtype: 'float32' as const, tolerance: FLOAT32 },
  ];
  for (const { device, dtype, tolerance } of configs) {
    describe(`${device} in ${dtype}`, function () {
      if (device === 'webgpu') {
        before(async function () {
          await requireWebGpu(this);
        });
      }
      for (const c of fixtures.cases) it(c.name, () => checkFixture(c, device, dtype, tolerance));
    });
  }
});

describe('layerNorm kernels against the CPU backend', function () {
  before(async function () {
    await requireWebGpu(this);
  });

  const widths = [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 33, 64, 100, 255, 256, 257, 768, 1000, 1023, 1024, 1025, 4096, 4097, 8192, 8193];
  for (const width of widths) {
    it(`width ${width}`, async () => {
      const inputs = makeInputs(3, width, width);
      const gpu = await runOp(inputs, [3, width], [width], 'webgpu', 'float32');
      const cpu = await runOp(inputs, [3, width], [width], 'cpu', 'float32');
      expectResultsClose(gpu, cpu, FLOAT32, `width ${width}`);
    });
  }

  for (const width of [65536, 65537, 70001]) {
    it(`width ${width}, wider than 65536`, async () => {
      const inputs = makeInputs(2, width, width);
      const gpu = await runOp(inputs, [2, width], [width], 'webgpu', 'float32');
      const cpu = await runOp(inputs, [2, width], [width], 'cpu', 'float32');
      expectResultsClose(gpu, cpu, FLOAT32, `width ${width}`);
    });
  }

  // Explicit mappings reach the paths that a GPU adapter picks: several invocations per row combining in
  // workgroup memory, registers or streaming, and one invocation per row in a full workgroup.
  const workgroupSize = () => (getBackend('webgpu') as unknown as { workgroupSize: number }).workgroupSize;
  for (const threads of [1, 4, 32, 'workgroup'] as const) {
    for (const width of [3, 8, 100, 768, 1030, 5000]) {
      it(`${threads} invocations per row, width ${width}`, async () => {
        const threadsPerRow = threads === 'workgroup' ? workgroupSize() : threads;
        const inputs = makeInputs(37, width, width + 7);
        const gpu = await runKernels(inputs, 37, width, 'webgpu', 'float32', { threadsPerRow });
        const cpu = await runKernels(inputs, 37, width, 'cpu', 'float32');
        expectResultsClose(gpu, cpu, FLOAT32, `${threadsPerRow} per row`);
      });
    }
  }

  it('rejects a threadsPerRow that is not a power of two', () => {
    const x = fg.randn([2, 4], { device: 'webgpu' });
    expect(() => getBackend('webgpu').layerNorm(x.asView('test'), 4, null, null, 1e-5, { threadsPerRow: 3 })).to.throw(/threadsPerRow must be a power of two/);
  });

  it('70000 rows with the default mapping', async () => {
    for (const width of [3, 8]) {
      const inputs = makeInputs(70000, width, 5);
      const gpu = await runOp(inputs, [70000, width], [width], 'webgpu', 'float32');
      const cpu = await runOp(inputs, [70000, width], [width], 'cpu', 'float32');
      expectResultsClose(gpu, cpu, FLOAT32, `70000 x ${width}`);
    }
  });

  it('70000 rows of one workgroup each, past 65535 workgroups per dimension', async () => {
    const inputs = makeInputs(70000, 4, 6);
    const options = { threadsPerRow: workgroupSize() };
    const gpu = await runKernels(inputs, 70000, 4, 'webgpu', 'float32', options);
    const cpu = await runKernels(inputs, 70000, 4, 'cpu', 'float32');
    expectResultsClose(gpu, cpu, FLOAT32, '70000 workgroups');
  });

  it('several trailing dims, weight only and no affine', async () => {
    const cases: [number[], number[], 'both' | 'weight' | 'none'][] = [
      [[2, 3, 4, 5], [4, 5], 'both'],
      [[2, 3, 4, 5], [3, 4, 5], 'weight'],
      [[4, 2, 300], [2, 300], 'none'],
    ];
    for (const [shape, normalizedShape, affine] of cases) {
      const width = normalizedShape.reduce((a, b) => a * b, 1);
      const inputs = makeInputs(shape.reduce((a, b) => a * b, 1) / width, width, 9, affine);
      const gpu = await runOp(inputs, shape, normalizedShape, 'webgpu', 'float32');
      const cpu = await runOp(inputs, shape, normalizedShape, 'cpu', 'float32');
      expectResultsClose(gpu, cpu, FLOAT32, `${affine} over ${JSON.stringify(normalizedShape)}`);
    }
  });

  it('batch size 1 with any sequence length', async () => {
    for (const sequence of [1, 2, 5, 17, 64]) {
      const inputs = makeInputs(sequence, 24, sequence);
      const gpu = await runOp(inputs, [1, sequence, 24], [24], 'webgpu', 'float32');
      const cpu = await runOp(inputs, [1, sequence, 24], [24], 'cpu', 'float32');
      expectResultsClose(gpu, cpu, FLOAT32, `sequence ${sequence}`);
    }
  });

  it('values near 1e4 with unit spread keep their variance', async () => {
    for (const [width, options] of [[768, {}], [9000, {}], [768, { threadsPerRow: 64 }], [100, { threadsPerRow: 1 }]] as const) {
      const inputs = makeInputs(4, width, 3, 'both', 1e4);
      const gpu = await runKernels(inputs, 4, width, 'webgpu', 'float32', options);
      // The float32 CPU run starts from the same float32-rounded x (a spacing of 2^-10 near 1e4) and computes in float64.
      const cpu = await runKernels(inputs, 4, width, 'cpu', 'float32');
      expectResultsClose(gpu, cpu, FLOAT32, `offset 1e4, width ${width}`);
    }
  });

  it('constant rows give the bias and finite gradients with eps 1e-12', async () => {
    for (const [width, options] of [[1, {}], [3, {}], [768, {}], [9000, {}], [768, { threadsPerRow: 64 }], [5000, { threadsPerRow: 256 }]] as const) {
      const inputs = makeInputs(3, width, 4);
      inputs.x = Float64Array.from({ length: 3 * width }, (_, i) => [0.1, -3, 12345.678][Math.floor(i / width)]);
      const gpu = await runKernels(inputs, 3, width, 'webgpu', 'float32', options, 1e-12);
      const bias = Float32Array.from(inputs.bias!);
      for (let i = 0; i < gpu.y.length; i++) expect(gpu.y[i], `y[${i}] at width ${width}`).to.equal(bias[i % width]);
      for (const [name, grad] of Object.entries({ dx: gpu.dx, dweight: gpu.dweight!, dbias: gpu.dbias! })) {
        expect(Array.from(grad).every(Number.isFinite), `${name} is finite at width ${width}`).to.equal(true);
      }
      const cpu = await runKernels(inputs, 3, width, 'cpu', 'float32', {}, 1e-12);
      expectResultsClose(gpu, cpu, FLOAT32, `constant rows, width ${width}`);
    }
  });

  it('inputs at odd offsets and strided inputs', async () => {
    const base = fg.tensor(values(5 * 16 + 1, 8), { device: 'webgpu' });
    const cpuBase = fg.tensor(values(5 * 16 + 1, 8), { device: 'cpu' });
    const gpu = F.layerNorm(base.narrow(0, 1, 80).reshape([5, 16]), 16);
    const cpu = F.layerNorm(cpuBase.narrow(0, 1, 80).reshape([5, 16]), 16);
    expectClose(await gpu.toArray(), Array.from(await cpu.toArray()), FLOAT32, 'offset 1');
    const gpuT = F.layerNorm(base.narrow(0, 0, 80).reshape([16, 5]).t(), 16);
    const cpuT = F.layerNorm(cpuBase.narrow(0, 0, 80).reshape([16, 5]).t(), 16);
    expectClose(await gpuT.toArray(), Array.from(await cpuT.toArray()), FLOAT32, 'transposed');
  });
});

describe('layerNorm determinism and saved tensors', function () {
  before(async function () {
    await requireWebGpu(this);
  });

  it('dweight and dbias are bit-identical across runs', async () => {
    for (const [rows, width, options] of [[1000, 768, {}], [1000, 768, { threadsPerRow: 64 }], [300, 9000, {}], [300, 5000, { threadsPerRow: 256 }]] as const) {
      const inputs = makeInputs(rows, width, 12);
      const first = await runKernels(inputs, rows, width, 'webgpu', 'float32', options);
      for (let run = 0; run < 3; run++) {
        const again = await runKernels(inputs, rows, width, 'webgpu', 'float32', options);
        expect(sameBits(again.dweight, first.dweight), `dweight of run ${run}, ${rows} x ${width}`).to.equal(true);
        expect(sameBits(again.dbias, first.dbias), `dbias of run ${run}, ${rows} x ${width}`).to.equal(true);
        expect(sameBits(again.dx, first.dx), `dx of run ${run}, ${rows} x ${width}`).to.equal(true);
      }
    }
  });

  it('the op saves x, weight, mean and rstd only', () => {
    const x = fg.randn([4, 5, 768], { requiresGrad: true });
    const weight = fg.ones([768], { requiresGrad: true });
    const bias = fg.zeros([768], { requiresGrad: true });
    const y = F.layerNorm(x, 768, weight, bias);
    expect(y.gradFn!.op).to.equal('layerNorm');
    expect(y.gradFn!.savedBytes).to.deep.equal([4 * 5 * 768 * 4, 768 * 4, 20 * 4, 20 * 4]);
    expect(y.gradFn!.edges.map((edge) => edge?.leaf)).to.deep.equal([x, weight, bias]);
    const plain = F.layerNorm(x, [5, 768]);
    expect(plain.gradFn!.savedBytes).to.deep.equal([4 * 5 * 768 * 4, 4 * 4, 4 * 4]);
  });

  it('float64 statistics on the CPU backend take 16 bytes per row', () => {
    const x = fg.randn([6, 10], { device: 'cpu', dtype: 'float64', requiresGrad: true });
    const y = F.layerNorm(x, 10, fg.ones([10], { device: 'cpu', dtype: 'float64' }));
    expect(y.gradFn!.savedBytes).to.deep.equal([6 * 10 * 8, 10 * 8, 6 * 8, 6 * 8]);
  });
});

describe('float16', function () {
  before(async function () {
    await requireWebGpu(this);
    if (!getBackend('webgpu').supportsDType('float16')) this.skip();
  });

  for (const device of ['cpu', 'webgpu'] as const) {
    it(`creates and casts float16 tensors on ${device}`, async () => {
      const created = fg.tensor([1.0001, 2.5, 65504, 70000, -3.3, 1e-8], { dtype: 'float16', device });
      expect(created.dtype).to.equal('float16');
      expect(Array.from(await created.toArray())).to.deep.equal([1, 2.5, 65504, Infinity, -3.30078125, 0]);
      const x = fg.tensor([0.1, -7.123, 1000.7], { device, requiresGrad: true });
      const half = x.to('float16');
      expect(half.dtype).to.equal('float16');
      expect(Array.from(await half.toArray())).to.deep.equal(Array.from(roundToFloat16([0.1, -7.123, 1000.7])));
      half.to('float32').mul(2).sum().backward();
      expect(Array.from(await x.grad!.toArray())).to.deep.equal([2, 2, 2]);
    });
  }

  /** Half-precision inputs, so that the float16 and float32 runs start from the same numbers. */
  function halfInputs(rows: number, width: number, seed: number): Inputs {
    const inputs = makeInputs(rows, width, seed);
    const round = (a: Float64Array | null) => a && Float64Array.from(roundToFloat16(a));
    return { x: round(inputs.x)!, weight: round(inputs.weight), bias: round(inputs.bias), grad: round(inputs.grad)! };
  }

  for (const width of [7, 768, 1030, 4096]) {
    it(`layerNorm in float16 matches float32 on WebGPU, width ${width}`, async () => {
      const inputs = halfInputs(6, width, width);
      const half = await runOp(inputs, [6, width], [width], 'webgpu', 'float16');
      const single = await runOp(inputs, [6, width], [width], 'webgpu', 'float32');
      expectResultsClose(half, single, FLOAT16, `float16 width ${width}`);
    });
  }

  for (const threadsPerRow of [1, 32]) {
    it(`float16 kernels with ${threadsPerRow} invocations per row match the CPU backend`, async () => {
      const inputs = halfInputs(9, 200, threadsPerRow);
      const gpu = await runKernels(inputs, 9, 200, 'webgpu', 'float16', { threadsPerRow });
      const cpu = await runKernels(inputs, 9, 200, 'cpu', 'float16');
      expectResultsClose(gpu, cpu, FLOAT16, `float16 ${threadsPerRow} per row`);
    });
  }

  it('layerNorm in float16 on the CPU backend rounds to half precision', async () => {
    const inputs = halfInputs(4, 33, 2);
    const half = await runOp(inputs, [4, 33], [33], 'cpu', 'float16');
    const single = await runOp(inputs, [4, 33], [33], 'cpu', 'float32');
    expect(Array.from(half.y)).to.deep.equal(Array.from(roundToFloat16(half.y)));
    expect(Array.from(half.dx)).to.deep.equal(Array.from(roundToFloat16(half.dx)));
    expectResultsClose(half, single, FLOAT16, 'CPU float16');
  });

  it('names shader-f16 where the adapter lacks it', () => {
    const runner = {
      workgroupSize: 64,
      profile: { workgroupSize: 64, software: false },
      hasF16: false,
      description: 'an adapter without shader-f16',
      allocate: () => { throw new Error('not reached'); },
      free: () => undefined,
      run: () => undefined,
    };
    const x = fg.zeros([2, 4], { device: 'cpu', dtype: 'float16' });
    expect(() => layerNormForward(runner, x.asView('test'), 4, null, null, 1e-5)).to.throw(/float16 needs the WebGPU feature 'shader-f16', which this adapter \(an adapter without shader-f16\) lacks/);
  });
});
