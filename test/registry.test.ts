// Walks the op registry: float64 gradcheck of every differentiable op on the CPU backend, and
// WebGPU-versus-CPU parity of forward values and gradients in float32 (matmul ops with both blockings).

import { expect } from 'chai';
import * as fg from '../src/index.js';
import type { OpSample, SampleArg } from '../src/index.js';
import type { WebGpuBackend } from '../src/backends/webgpu/webgpu-backend.js';
import { getBackend } from '../src/runtime.js';
import { expectClose, requireWebGpu, seededValues } from './helpers/setup.js';

const ops = fg.registeredOps();

/** Host values for one sample argument, by its kind. */
function sampleValues(spec: SampleArg, random: () => number): number[] {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const kind = spec.kind ?? 'normal';
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = random();
    if (kind === 'positive') values.push(0.5 + 2 * u);
    else if (kind === 'awayFromZero') values.push((u < 0.5 ? -1 : 1) * (0.3 + random()));
    else if (kind === 'index') values.push(Math.floor(u * (spec.high ?? 2)));
    else if (kind === 'bool') values.push(u < 0.5 ? 1 : 0);
    else if (kind === 'distinct') values.push(i);
    else values.push(Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * random()));
  }
  if (kind === 'distinct') {
    // A shuffled ramp: no ties, so max, min and their gradients are well defined.
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [values[i], values[j]] = [values[j], values[i]];
    }
    return values.map((v) => (v / Math.max(n, 1)) * 4 - 2);
  }
  return values;
}

function makeInputs(sample: OpSample, seed: number, dtype: fg.DType, device: fg.DeviceName, grad: boolean): fg.Tensor[] {
  const random = seededValues(seed);
  return sample.args.map((spec) => {
    const values = sampleValues(spec, random);
    const kind = spec.kind ?? 'normal';
    if (kind === 'index') return fg.tensor(values, { shape: spec.shape, dtype: 'int32', device });
    if (kind === 'bool') return fg.tensor(values.map((v) => v === 1), { shape: spec.shape, dtype: 'bool', device });
    return fg.tensor(values, { shape: spec.shape, dtype, device, requiresGrad: grad && spec.grad !== false });
  });
}

describe('op registry', () => {
  it('declares samples for every op', () => {
    expect(ops.length).to.be.greaterThan(40);
    for (const op of ops) expect(op.samples.length, `${op.name} has no samples`).to.be.greaterThan(0);
  });

  describe('float64 gradcheck on the CPU backend', () => {
    for (const op of ops.filter((o) => o.differentiable)) {
      for (const [k, sample] of op.samples.entries()) {
        it(`${op.name}: ${sample.label}`, async () => {
          const inputs = makeInputs(sample, 1000 + k, 'float64', 'cpu', true);
          const result = await fg.gradcheck(sample.run, inputs, { eps: 1e-6, atol: 1e-6, rtol: 1e-4 });
          expect(result.ok).to.equal(true);
          inputs.forEach((t) => t.dispose());
        });
      }
    }
  });

  describe('WebGPU against the CPU backend in float32', function () {
    before(async function () {
      await requireWebGpu(this);
    });

    for (const op of ops) {
      for (const [k, sample] of op.samples.entries()) {
        it(`${op.name}: ${sample.label}`, () => checkParity(op, sample, k));
      }
    }
  });

  // The matmul kernels block work differently on CPU and GPU adapters; this runs the other blocking here.
  describe('WebGPU with the other matmul blocking against the CPU backend', function () {
    let backend: WebGpuBackend;
    before(async function () {
      await requireWebGpu(this);
      backend = getBackend('webgpu') as WebGpuBackend;
      backend.matmulProfile = backend.isSoftwareAdapter() ? 'gpu' : 'software';
    });
    after(() => {
      if (backend) backend.matmulProfile = 'auto';
    });

    for (const op of ops.filter((o) => /^(matmul|linear)/.test(o.name))) {
      for (const [k, sample] of op.samples.entries()) {
        it(`${op.name}: ${sample.label}`, () => checkParity(op, sample, k));
      }
    }
  });
});

/** Runs a sample on the CPU and WebGPU backends in float32 and compares values and gradients. */
async function checkParity(op: fg.OpEntry, sample: OpSample, k: number): Promise<void> {
  const results = [];
  for (const device of ['cpu', 'webgpu'] as const) {
    const inputs = makeInputs(sample, 2000 + k, 'float32', device, op.differentiable);
    const out = sample.run(...inputs);
    const values = await out.toArray();
    const grads: (ArrayLike<number> | null)[] = [];
    if (op.differentiable && out.requiresGrad) {
      const random = seededValues(77);
      const weight = fg.tensor(Array.from({ length: out.numel }, () => random() - 0.5), { shape: [...out.shape], device });
      out.mul(weight).sum().backward();
      for (const t of inputs) grads.push(t.grad ? await t.grad.toArray() : null);
    }
    results.push({ dtype: out.dtype, shape: out.shape, values, grads });
  }
  const [cpu, gpu] = results;
  expect(gpu.shape).to.deep.equal(cpu.shape);
  expect(gpu.dtype).to.equal(cpu.dtype);
  expectClose(gpu.values, cpu.values, 1e-4, 1e-4, 'forward');
  cpu.grads.forEach((g, i) => {
    if (g === null) expect(gpu.grads[i], `grad ${i}`).to.equal(null);
    else expectClose(gpu.grads[i]!, g, 1e-4, 1e-3, `grad of input ${i}`);
  });
}
