// The WebGPU sum, max and min kernels: their load layout and chunking choices, and parity with the CPU
// backend on the dtypes and values that the float32 registry samples do not reach. Then strided copies
// that write four elements of the innermost dim per invocation.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { FLOAT_DIVISION_LIMIT } from '../src/backends/webgpu/kernels.js';
import { planReduction } from '../src/backends/webgpu/reduce.js';
import { requireWebGpu, seededValues } from './helpers/setup.js';

/** Returns `count` values in [-1, 1) from a seeded generator. */
function values(count: number, seed: number): number[] {
  const random = seededValues(seed);
  return Array.from({ length: count }, () => random() * 2 - 1);
}

/** Runs `f` on the CPU and on WebGPU with the same input and returns both outputs as plain arrays. */
async function onBothBackends(data: number[], shape: number[], dtype: fg.DType, f: (x: fg.Tensor) => fg.Tensor): Promise<[number[], number[]]> {
  const results: number[][] = [];
  for (const device of ['cpu', 'webgpu'] as const) {
    const x = fg.tensor(data, { shape, dtype, device });
    const y = f(x);
    results.push(Array.from(await y.toArray()));
    x.dispose();
    y.dispose();
  }
  return [results[0], results[1]];
}

describe('WebGPU reductions', () => {
  describe('planReduction', () => {
    it('loads columns as vec4 for a sum over dim 0', () => {
      const plan = planReduction(256, 'float32', 'float32', { shape: [256], strides: [1] }, { shape: [2048], strides: [256] }, 0, true);
      expect(plan.vector).to.equal('columns');
      expect(plan.rows).to.equal(64);
      expect(plan.reduced.strides).to.deep.equal([64]);
      expect(plan.chunks).to.be.greaterThan(1);
      expect(plan.chunks * plan.chunkLength).to.be.at.least(2048);
    });

    it('loads rows as vec4 for a sum over the last dim', () => {
      const plan = planReduction(256, 'float32', 'float32', { shape: [2048], strides: [256] }, { shape: [256], strides: [1] }, 0, true);
      expect(plan.vector).to.equal('rows');
      expect(plan.size).to.equal(64);
      expect(plan.kept.strides).to.deep.equal([64]);
    });

    it('falls back to scalar loads', () => {
      const cases: { label: string; kept: number[]; reduced: number[]; offset: number; dtype: fg.DType; out?: fg.DType }[] = [
        { label: 'odd column count', kept: [7, 1], reduced: [301, 7], offset: 0, dtype: 'float32' as const },
        { label: 'unaligned offset', kept: [8, 1], reduced: [300, 8], offset: 2, dtype: 'float32' as const },
        { label: 'float16', kept: [8, 1], reduced: [300, 8], offset: 0, dtype: 'float16' as const },
        { label: 'int32', kept: [8, 1], reduced: [300, 8], offset: 0, dtype: 'int32' as const },
        { label: 'float16 output', kept: [8, 1], reduced: [300, 8], offset: 0, dtype: 'float32' as const, out: 'float16' as const },
      ];
      for (const c of cases) {
        const plan = planReduction(256, c.dtype, c.out ?? c.dtype, { shape: [c.kept[0]], strides: [c.kept[1]] }, { shape: [c.reduced[0]], strides: [c.reduced[1]] }, c.offset, true);
        expect(plan.vector, c.label).to.equal('scalar');
      }
    });

    it('keeps one pass when the rows fill the adapter', () => {
      const plan = planReduction(64, 'float32', 'float32', { shape: [5000], strides: [3] }, { shape: [3], strides: [1] }, 0, true);
      expect(plan.chunks).to.equal(1);
    });

    it('keeps one pass for an empty reduction', () => {
      const plan = planReduction(256, 'float32', 'float32', { shape: [5], strides: [1] }, { shape: [0], strides: [5] }, 0, true);
      expect(plan.chunks).to.equal(1);
      expect(plan.chunkLength).to.equal(1);
    });
  });

  describe('against the CPU backend', function () {
    before(async function () {
      await requireWebGpu(this);
    });

    it('sums float16 over dim 0 in f32', async () => {
      const data = values(600 * 12, 1);
      const [cpu, gpu] = await onBothBackends(data, [600, 12], 'float16', (x) => x.sum(0));
      expect(gpu.length).to.equal(12);
      gpu.forEach((v, i) => expect(v, `column ${i}`).to.be.closeTo(cpu[i], 0.02 + Math.abs(cpu[i]) * 2e-3));
    });

    it('sums float16 over the last dim of a transposed view', async () => {
      const data = values(300 * 10, 2);
      const [cpu, gpu] = await onBothBackends(data, [300, 10], 'float16', (x) => x.t().sum(1, true));
      expect(gpu.length).to.equal(10);
      gpu.forEach((v, i) => expect(v, `row ${i}`).to.be.closeTo(cpu[i], 0.02 + Math.abs(cpu[i]) * 2e-3));
    });

    it('sums int32 exactly over leading dims', async () => {
      const data = Array.from({ length: 3 * 700 * 5 }, (_, i) => ((i * 7919) % 2001) - 1000);
      const [cpu, gpu] = await onBothBackends(data, [3, 700, 5], 'int32', (x) => x.sum([0, 1]));
      expect(gpu).to.deep.equal(cpu);
    });

    it('counts bool values over dim 0', async () => {
      const data = Array.from({ length: 900 * 4 }, (_, i) => (i % 3 === 0 ? 1 : 0));
      const [cpu, gpu] = await onBothBackends(data, [900, 4], 'bool', (x) => x.sum(0));
      expect(gpu).to.deep.equal(cpu);
    });

    it('takes int32 max and min over dim 0', async () => {
      const data = Array.from({ length: 1000 * 6 }, (_, i) => ((i * 104729) % 20001) - 10000);
      for (const f of [(x: fg.Tensor) => x.amax(0), (x: fg.Tensor) => x.amin(0)]) {
        const [cpu, gpu] = await onBothBackends(data, [1000, 6], 'int32', f);
        expect(gpu).to.deep.equal(cpu);
      }
    });

    it('propagates NaN through both passes of max', async () => {
      const data = values(2000 * 8, 3);
      data[1234 * 8 + 3] = NaN;
      data[5 * 8 + 6] = -Infinity;
      const x = fg.tensor(data, { shape: [2000, 8], device: 'webgpu' });
      const columns = Array.from(await x.amax(0).toArray());
      const transposed = x.t().contiguous();
      const rows = Array.from(await transposed.amin(1).toArray());
      columns.forEach((v, i) => expect(Number.isNaN(v), `amax column ${i}`).to.equal(i === 3));
      rows.forEach((v, i) => expect(Number.isNaN(v), `amin row ${i}`).to.equal(i === 3));
      transposed.dispose();
      expect(rows[6]).to.equal(-Infinity);
      x.dispose();
    });

    it('sums a long column in two passes', async () => {
      const data = values(20000 * 4, 4);
      const [cpu, gpu] = await onBothBackends(data, [20000, 4], 'float32', (x) => x.sum(0));
      gpu.forEach((v, i) => expect(v, `column ${i}`).to.be.closeTo(cpu[i], 1e-3));
    });

    it('returns zeros for a sum over an empty dim', async () => {
      const x = fg.zeros([0, 5], { device: 'webgpu' });
      const y = x.sum(0);
      expect(y.shape).to.deep.equal([5]);
      expect(Array.from(await y.toArray())).to.deep.equal([0, 0, 0, 0, 0]);
      x.dispose();
      y.dispose();
    });
  });

  describe('scatterAdd along rows', function () {
    before(async function () {
      await requireWebGpu(this);
    });

    for (const [label, rows, width, count, dtype] of [
      ['vec4 columns in chunks', 5, 8, 700, 'float32'],
      ['odd width in one pass', 300, 3, 500, 'float32'],
      ['float16 in chunks', 4, 6, 600, 'float16'],
    ] as const) {
      it(`matches the CPU: ${label}`, async () => {
        const ids = Array.from({ length: count }, (_, i) => (i * 37) % rows);
        const grad = values(count * width, 5);
        const results: number[][] = [];
        for (const device of ['cpu', 'webgpu'] as const) {
          const weight = fg.zeros([rows, width], { dtype, device, requiresGrad: true });
          const index = fg.tensor(ids, { shape: [count], dtype: 'int32', device });
          const out = fg.nn.functional.embedding(index, weight);
          out.backward(fg.tensor(grad, { shape: [count, width], dtype, device }));
          results.push(Array.from(await weight.grad!.toArray()));
          for (const t of [weight, index, out]) t.dispose();
        }
        const [cpu, gpu] = results;
        const tolerance = dtype === 'float16' ? 0.05 : 1e-4;
        gpu.forEach((v, i) => expect(v, `grad[${Math.floor(i / width)}, ${i % width}]`).to.be.closeTo(cpu[i], tolerance + Math.abs(cpu[i]) * 1e-3));
      });
    }
  });

  describe('strided copies in runs of four', function () {
    before(async function () {
      await requireWebGpu(this);
    });

    it('moves attention heads to the front and back', async () => {
      const shape = [3, 5, 4, 8];
      const data = Array.from({ length: 3 * 5 * 4 * 8 }, (_, i) => i);
      for (const order of [[0, 2, 1, 3], [2, 0, 1, 3], [0, 2, 3, 1]]) {
        const [cpu, gpu] = await onBothBackends(data, shape, 'float32', (x) => x.permute(order).contiguous());
        expect(gpu, `permute ${order}`).to.deep.equal(cpu);
      }
    });

    it('writes into a strided slice of a larger tensor', async () => {
      const target = fg.zeros([6, 3, 8], { device: 'webgpu' });
      const source = fg.arange(0, 6 * 8, 1, { device: 'webgpu' }).reshape([6, 8]);
      const slice = target.narrow(1, 1, 1).squeeze(1);
      slice.copy_(source);
      const values = Array.from(await target.toArray());
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 3; j++) {
          for (let k = 0; k < 8; k++) expect(values[(i * 3 + j) * 8 + k], `[${i}, ${j}, ${k}]`).to.equal(j === 1 ? i * 8 + k : 0);
        }
      }
      for (const t of [target, source, slice]) t.dispose();
    });

    it('transposes an int32 tensor of more than 2^24 elements', async () => {
      const [rows, cols] = [4096, 4100];
      expect(rows * cols).to.be.greaterThan(FLOAT_DIVISION_LIMIT);
      const x = fg.arange(0, rows * cols, 1, { dtype: 'int32', device: 'webgpu' }).reshape([rows, cols]);
      const t = x.t().contiguous();
      const values = await t.toArray();
      for (const [i, j] of [[0, 0], [1, 0], [0, 1], [0, 3], [cols - 1, rows - 1], [4099, 4095], [1234, 3210], [7, 4093]]) {
        expect(values[i * rows + j], `t[${i}, ${j}]`).to.equal(j * cols + i);
      }
      x.dispose();
      t.dispose();
    });
  });
});
