// Kernel selection in the WebGPU backend: dim coalescing, the matmul load choice, and the strided map
// kernel past the index range where it divides in f32.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { coalesceDims } from '../src/backends/webgpu/coalesce.js';
import { FLOAT_DIVISION_LIMIT } from '../src/backends/webgpu/kernels.js';
import { matmulLoad, matmulTiling } from '../src/backends/webgpu/matmul.js';
import { requireWebGpu } from './helpers/setup.js';

describe('WebGPU kernel selection', () => {
  describe('coalesceDims', () => {
    it('merges a contiguous tensor into one dim', () => {
      expect(coalesceDims([2, 3, 4], [[12, 4, 1]])).to.deep.equal({ shape: [24], strides: [[1]] });
    });

    it('merges a broadcast mask with its target', () => {
      const merged = coalesceDims([32, 4, 64, 64], [[16384, 4096, 64, 1], [0, 0, 64, 1]]);
      expect(merged).to.deep.equal({ shape: [128, 4096], strides: [[4096, 1], [0, 1]] });
    });

    it('keeps dims a transpose separates', () => {
      expect(coalesceDims([3, 5], [[1, 3]])).to.deep.equal({ shape: [3, 5], strides: [[1, 3]] });
    });

    it('drops size-1 dims and keeps a scalar as one element', () => {
      expect(coalesceDims([1, 6, 1], [[6, 1, 1]])).to.deep.equal({ shape: [6], strides: [[1]] });
      expect(coalesceDims([1, 1], [[1, 1], [0, 0]])).to.deep.equal({ shape: [1], strides: [[1], [1]] });
    });
  });

  describe('matmul', () => {
    it('reads B as vec4 only when its strides allow', () => {
      expect(matmulLoad([8, 1], 0)).to.equal('n4');
      expect(matmulLoad([16, 8, 1], 4)).to.equal('n4');
      expect(matmulLoad([0, 8, 1], 0), 'broadcast batch').to.equal('n4');
      expect(matmulLoad([1, 8], 0), 'transposed B').to.equal('strided');
      expect(matmulLoad([8, 1], 2), 'unaligned offset').to.equal('strided');
      expect(matmulLoad([6, 1], 0), 'row stride not a multiple of 4').to.equal('strided');
      expect(matmulLoad([10, 8, 1], 0), 'batch stride not a multiple of 4').to.equal('strided');
    });

    it('narrows tiles for small outputs', () => {
      const limits = { maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256 } as GPUSupportedLimits;
      expect(matmulTiling(limits, 1024, 1024, 8)).to.deep.equal({ lanes: 16, rows: 16, groups: 4 });
      expect(matmulTiling(limits, 64, 16, 8)).to.deep.equal({ lanes: 4, rows: 16, groups: 1 });
      expect(matmulTiling(limits, 1, 5, 8)).to.deep.equal({ lanes: 2, rows: 1, groups: 1 });
    });

    it('widens blocks while lanes fill a subgroup', () => {
      const limits = { maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256 } as GPUSupportedLimits;
      expect(matmulTiling(limits, 2048, 128, 8)).to.deep.equal({ lanes: 8, rows: 16, groups: 4 });
      expect(matmulTiling(limits, 2048, 64, 8)).to.deep.equal({ lanes: 8, rows: 16, groups: 2 });
      expect(matmulTiling(limits, 2048, 63, 8)).to.deep.equal({ lanes: 16, rows: 16, groups: 1 });
      expect(matmulTiling(limits, 2048, 64, 16), 'subgroups of 16').to.deep.equal({ lanes: 16, rows: 16, groups: 1 });
      expect(matmulTiling(limits, 2048, 256), 'no subgroup size').to.deep.equal({ lanes: 16, rows: 16, groups: 4 });
      const small = { maxComputeWorkgroupSizeX: 4, maxComputeInvocationsPerWorkgroup: 4 } as GPUSupportedLimits;
      expect(matmulTiling(small, 2048, 64, 8), 'workgroup limit below the subgroup').to.deep.equal({ lanes: 4, rows: 16, groups: 4 });
    });

    it('keeps 4 x 4 blocks on GPU adapters', () => {
      const limits = { maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256 } as GPUSupportedLimits;
      expect(matmulTiling(limits, 1024, 1024, 32, false)).to.deep.equal({ lanes: 64, rows: 4, groups: 1 });
      expect(matmulTiling(limits, 64, 16, 32, false)).to.deep.equal({ lanes: 4, rows: 4, groups: 1 });
      expect(matmulTiling(limits, 3, 5, 32, false)).to.deep.equal({ lanes: 2, rows: 4, groups: 1 });
    });
  });

  describe('strided map past the f32 division range', function () {
    before(async function () {
      await requireWebGpu(this);
    });

    it('transposes an int32 tensor of more than 2^24 elements', async () => {
      const [rows, cols] = [4099, 4097];
      expect(rows * cols).to.be.greaterThan(FLOAT_DIVISION_LIMIT);
      const x = fg.arange(0, rows * cols, 1, { dtype: 'int32', device: 'webgpu' }).reshape([rows, cols]);
      const t = x.t().contiguous();
      const values = await t.toArray();
      for (const [i, j] of [[0, 0], [1, 0], [0, 1], [cols - 1, rows - 1], [4096, 4098], [1234, 3210]]) {
        expect(values[i * rows + j], `t[${i}, ${j}]`).to.equal(j * cols + i);
      }
      x.dispose();
      t.dispose();
    });
  });
});
