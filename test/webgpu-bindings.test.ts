// Uniform slots and bind groups in the WebGPU backend: every dispatch of a batch gets its own slot of the
// shared uniform buffer, so no dispatch reads another one's uniforms, and bind groups are reused across
// batches.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { BindGroupCache, UNIFORM_BINDING_SIZE, layoutFromSource } from '../src/backends/webgpu/bindings.js';
import type { WebGpuBackend } from '../src/backends/webgpu/webgpu-backend.js';
import { getBackend } from '../src/runtime.js';
import { requireWebGpu } from './helpers/setup.js';

/** A kernel's binding declarations. layoutFromSource reads only these lines, so no shader is compiled. */
const BINDINGS = `
@group(0) @binding(0) var<uniform> uniforms: Uniforms;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
`;

describe('WebGPU uniform slots', () => {
  let device: GPUDevice;
  let uniforms: GPUBuffer;
  let layout: GPUBindGroupLayout;
  const storage: GPUBuffer[] = [];

  before(async function () {
    await requireWebGpu(this);
    device = (getBackend('webgpu') as WebGpuBackend).device;
    uniforms = device.createBuffer({ size: 4 * UNIFORM_BINDING_SIZE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    layout = layoutFromSource(device, BINDINGS, 'uniform slot test');
    for (let i = 0; i < 3; i++) storage.push(device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE }));
  });

  after(() => {
    uniforms?.destroy();
    for (const buffer of storage) buffer.destroy();
  });

  it('gives repeated buffers distinct slots in a batch', () => {
    const cache = new BindGroupCache(device, uniforms, 4);
    const slots = [0, 1, 2, 3].map(() => cache.acquire(layout, [storage[0]]).slot);
    expect([...slots].sort()).to.deep.equal([0, 1, 2, 3]);
    expect(cache.slotsInUse).to.equal(4);
  });

  it('rejects a dispatch past the last slot', () => {
    const cache = new BindGroupCache(device, uniforms, 4);
    for (let i = 0; i < 4; i++) cache.acquire(layout, [storage[i % 2]]);
    expect(() => cache.acquire(layout, [storage[2]])).to.throw(/all 4 uniform slots are taken; end the batch/);
  });

  it('reuses bind groups after endBatch', () => {
    const cache = new BindGroupCache(device, uniforms, 4);
    const first = [cache.acquire(layout, [storage[0]]), cache.acquire(layout, [storage[0]]), cache.acquire(layout, [storage[1]])];
    cache.endBatch();
    expect(cache.slotsInUse).to.equal(0);
    const second = [cache.acquire(layout, [storage[0]]), cache.acquire(layout, [storage[0]]), cache.acquire(layout, [storage[1]])];
    const groups = (bindings: typeof first) => bindings.map((b) => b.group);
    expect(new Set([...groups(first), ...groups(second)]).size, 'bind groups created').to.equal(3);
    expect(second.map((b) => b.slot).sort()).to.deep.equal(first.map((b) => b.slot).sort());
  });

  it('creates a bind group when the cached ones are taken', () => {
    const cache = new BindGroupCache(device, uniforms, 4);
    const a = cache.acquire(layout, [storage[0]]);
    cache.endBatch();
    cache.acquire(layout, [storage[1]]);
    const b = cache.acquire(layout, [storage[0]]);
    expect(b.group).to.not.equal(a.group);
    expect(b.slot).to.not.equal(a.slot);
  });

  it('clears past its capacity', () => {
    const cache = new BindGroupCache(device, uniforms, 4, 2);
    const first = cache.acquire(layout, [storage[0]]);
    cache.endBatch();
    cache.acquire(layout, [storage[1]]);
    cache.endBatch();
    cache.acquire(layout, [storage[2]]);
    cache.endBatch();
    expect(cache.acquire(layout, [storage[0]]).group, 'bind group after the clear').to.not.equal(first.group);
  });

  it('keeps uniforms apart across batches', async () => {
    // Each add takes its scalar from the uniforms, and the chain alternates between two buffers, so the
    // batches reuse the same buffers many times. A dispatch that read another's slot would change the sum.
    const backend = getBackend('webgpu') as WebGpuBackend;
    const steps = 700;
    for (let run = 0; run < 2; run++) {
      const before = backend.dispatchCount;
      let x = fg.zeros([64]);
      for (let i = 0; i < steps; i++) {
        const next = x.add(i);
        x.dispose();
        x = next;
      }
      const values = (await x.toArray()) as Float32Array;
      x.dispose();
      expect(backend.dispatchCount - before, `dispatches of run ${run}`).to.be.at.least(steps);
      expect([...new Set(values)], `sums of run ${run}`).to.deep.equal([(steps * (steps - 1)) / 2]);
    }
  });
});
