// Bad input: every error names the op, the values and the fix, and leaves the tensors involved usable.
// The main suite runs on the CPU backend and on WebGPU. Errors that need both devices, or only one, have
// their own suites.

import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import * as fg from '../src/index.js';
import { requireWebGpu } from './helpers/setup.js';

const F = fg.nn.functional;

async function expectRejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  let error: unknown = null;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  expect(error, 'expected the promise to reject').to.be.instanceOf(Error);
  expect((error as Error).message).to.match(pattern);
}

/** Runs `fn`, which must throw `pattern`, and checks that the failed call kept no memory on `device`. */
function expectThrowsWithoutLeak(device: fg.DeviceName, fn: () => unknown, pattern: RegExp): void {
  const before = fg.memory(device).liveBytes;
  expect(fn).to.throw(pattern);
  // Garbage collection can only lower the count, so a rise is memory that the failed call kept.
  expect(fg.memory(device).liveBytes, 'live bytes after the error').to.be.at.most(before);
}

function errorSuite(device: fg.DeviceName): void {
  describe(`errors on ${device}`, function () {
    if (device === 'webgpu') {
      before(async function () {
        await requireWebGpu(this);
      });
    }

    const on = { device };

    it('backward of a non-scalar', async () => {
      const a = fg.tensor([[1, 2, 3], [4, 5, 6]], { ...on, requiresGrad: true });
      const y = a.mul(2);
      expectThrowsWithoutLeak(device, () => y.backward(),
        /^backward: grad can be implicitly created only for scalar outputs, but this tensor has shape \[2, 3\]; reduce it first \(for example loss\.sum\(\) or loss\.mean\(\)\) or pass a gradient of the same shape$/);
      expect(a.grad).to.equal(null);

      y.backward(fg.onesLike(y));
      expect(await a.grad!.tolist()).to.deep.equal([[2, 2, 2], [2, 2, 2]]);
    });

    it('backward with a malformed gradient', () => {
      const a = fg.tensor([1, 2, 3], { ...on, requiresGrad: true });
      const y = a.mul(2);
      expect(() => y.backward(fg.ones([3, 1], on))).to.throw(/^backward: gradient of shape \[3, 1\] does not match the tensor's shape \[3\]$/);
      const options = { retainGraph: true } as unknown as fg.Tensor;
      expect(() => y.backward(options)).to.throw(TypeError, /^backward: gradient must be a Tensor, got object; options go second, as in backward\(undefined, \{ retainGraph: true \}\)$/);
    });

    it('second backward through a freed graph', async () => {
      const a = fg.tensor([1, 2, 3], { ...on, requiresGrad: true });
      const w = fg.tensor([4, 5, 6], on);
      const y = a.mul(w).sum();
      y.backward();
      expectThrowsWithoutLeak(device, () => y.backward(),
        /^mul: backward through this graph a second time, but the tensors it saved were freed after the first backward; pass \{ retainGraph: true \} to the first backward\(\) to keep them$/);
      expect(await a.grad!.tolist(), 'the failed backward added nothing').to.deep.equal([4, 5, 6]);

      // The leaves still work in a new graph.
      a.mul(w).sum().backward();
      expect(await a.grad!.tolist()).to.deep.equal([8, 10, 12]);
    });

    it('second backward with retainGraph', async () => {
      const a = fg.tensor([1, 2, 3], { ...on, requiresGrad: true });
      const w = fg.tensor([4, 5, 6], on);
      const y = a.mul(w).sum();
      y.backward(undefined, { retainGraph: true });
      y.backward();
      expect(await a.grad!.tolist()).to.deep.equal([8, 10, 12]);
      // The second backward did not retain the graph, so a third one fails.
      expect(() => y.backward()).to.throw(/^mul: backward through this graph a second time/);
    });

    it('saved tensor changed in place', async () => {
      const a = fg.tensor([1, 2, 3], on);
      const w = fg.tensor([4, 5, 6], { ...on, requiresGrad: true });
      const y = a.mul(w);
      a.add_(1);
      const loss = y.sum();
      expectThrowsWithoutLeak(device, () => loss.backward(),
        /^mul: a tensor of shape \[3\] saved for backward was modified by an in-place op \(version 0 when saved, now 1\); use the out-of-place op or clone\(\) the tensor first$/);
      expect(w.grad, 'the failed backward added nothing').to.equal(null);

      expect(await a.tolist()).to.deep.equal([2, 3, 4]);
      a.mul(w).sum().backward();
      expect(await w.grad!.tolist()).to.deep.equal([2, 3, 4]);
    });

    it('saved tensor changed through a view', () => {
      const a = fg.tensor([[1, 2], [3, 4]], on);
      const w = fg.tensor([[1, 1], [1, 1]], { ...on, requiresGrad: true });
      const y = a.matmul(w).sum();
      a.t().mul_(2);
      expect(() => y.backward()).to.throw(/^matmul: a tensor of shape \[2, 2\] saved for backward was modified by an in-place op \(version 0 when saved, now 1\)/);
    });

    it('shapes that do not broadcast', async () => {
      const a = fg.tensor([[1, 2, 3], [4, 5, 6]], on);
      const b = fg.ones([4, 3], on);
      expectThrowsWithoutLeak(device, () => a.add(b),
        /^add: shapes \[2, 3\] and \[4, 3\] cannot be broadcast together \(dimension -2 is 2 in one and 4 in another\); make the sizes equal or 1, for example with reshape or unsqueeze$/);
      expect(() => a.mul(fg.ones([2], on))).to.throw(/^mul: shapes \[2, 3\] and \[2\] cannot be broadcast together \(dimension -1 is 3 in one and 2 in another\)/);
      expect(() => a.maximum(fg.ones([3, 1, 2], on))).to.throw(/^maximum: shapes \[2, 3\] and \[3, 1, 2\] cannot be broadcast together/);
      expect(() => fg.where(a.gt(2), a, fg.ones([5], on))).to.throw(/^where: shapes \[2, 3\] and \[2, 3\] and \[5\] cannot be broadcast together/);

      expect(await a.add(b.narrow(0, 0, 2)).tolist()).to.deep.equal([[2, 3, 4], [5, 6, 7]]);
    });

    it('matmul inner dimensions differ', async () => {
      const a = fg.ones([2, 3], on);
      const b = fg.ones([4, 5], on);
      expectThrowsWithoutLeak(device, () => a.matmul(b),
        /^matmul: shapes \[2, 3\] and \[4, 5\] cannot be multiplied \(inner dimensions 3 and 4 differ\)$/);
      expect(() => fg.ones([2, 2, 3], on).matmul(fg.ones([3, 4, 5], on))).to.throw(/^matmul: shapes \[2, 2, 3\] and \[3, 4, 5\] cannot be multiplied \(inner dimensions 3 and 4 differ\)$/);
      expect(() => fg.ones([3], on).matmul(fg.ones([4], on))).to.throw(/^matmul: shapes \[3\] and \[4\] cannot be multiplied \(inner dimensions 3 and 4 differ\)$/);
      expect(() => a.matmul(fg.ones([2], on))).to.throw(/^matmul: shapes \[2, 3\] and \[2\] cannot be multiplied \(inner dimensions 3 and 2 differ\)$/);
      const batched = fg.ones([2, 3, 4], on);
      const otherBatch = fg.ones([5, 4, 2], on);
      expectThrowsWithoutLeak(device, () => batched.matmul(otherBatch),
        /^matmul: shapes \[2, 3, 4\] and \[5, 4, 2\] cannot be multiplied because their batch dimensions \[2\] and \[5\] do not broadcast; make each batch size equal or 1$/);

      expect(await a.matmul(fg.ones([3, 2], on)).tolist()).to.deep.equal([[3, 3], [3, 3]]);
    });

    it('tensor used after dispose', async () => {
      const t = fg.tensor([1, 2], on);
      const view = t.reshape([2, 1]);
      const other = fg.tensor([3, 4], on);
      t.dispose();
      t.dispose();
      const released = /this tensor of shape \[2\] was released by dispose\(\), tidy\(\) or shutdown\(\) and cannot be used again; return it from tidy\(\) or pass it to fg\.keep\(\) to keep it$/;
      expect(() => t.add(other)).to.throw(new RegExp(`^add: ${released.source}`));
      expect(() => other.mul(t)).to.throw(new RegExp(`^mul: ${released.source}`));
      expect(() => t.sum()).to.throw(new RegExp(`^sum: ${released.source}`));
      await expectRejects(t.toArray(), new RegExp(`^toArray: ${released.source}`));
      await expectRejects(t.item(), /^item: /);

      // A view keeps the storage alive, and the other operand is untouched.
      expect(await view.tolist()).to.deep.equal([[1], [2]]);
      expect(await other.add(1).tolist()).to.deep.equal([4, 5]);
    });

    it('tensor used after tidy', async () => {
      let inner: fg.Tensor | null = null;
      const kept = fg.tidy(() => {
        inner = fg.tensor([1, 2], on).mul(3);
        return inner.add(1);
      });
      expect(() => inner!.add(1)).to.throw(/^add: this tensor of shape \[2\] was released by dispose\(\), tidy\(\) or shutdown\(\)/);
      await expectRejects(inner!.tolist(), /^toArray: this tensor of shape \[2\] was released/);
      expect(await kept.tolist()).to.deep.equal([4, 7]);
    });

    it('in-place op on a leaf that requires grad', async () => {
      const w = fg.tensor([1, 2, 3], { ...on, requiresGrad: true });
      expectThrowsWithoutLeak(device, () => w.add_(1),
        /^add_: a leaf tensor that requires grad \(shape \[3\]\) cannot be changed in place while gradients are recorded; wrap the update in fg\.noGrad\(\(\) => \.\.\.\), as optimizers do$/);
      expect(() => w.mul_(fg.tensor([2, 2, 2], on))).to.throw(/^mul_: a leaf tensor that requires grad/);
      expect(() => w.zero_()).to.throw(/^fill_: a leaf tensor that requires grad/);
      expect(w.version, 'the failed ops changed nothing').to.equal(0);
      expect(await w.tolist()).to.deep.equal([1, 2, 3]);

      fg.noGrad(() => w.add_(1));
      expect(w.version).to.equal(1);
      expect(await w.tolist()).to.deep.equal([2, 3, 4]);
    });

    it('in-place op on a graph tensor', async () => {
      const w = fg.tensor([1, 2, 3], { ...on, requiresGrad: true });
      const y = w.mul(2);
      expect(() => y.mul_(2)).to.throw(/^mul_: in-place ops on tensors that are part of a graph are not supported; use the out-of-place op \(without the trailing underscore\)$/);
      y.sum().backward();
      expect(await w.grad!.tolist()).to.deep.equal([2, 2, 2]);
    });

    it('in-place op with a grad operand', async () => {
      const x = fg.tensor([1, 2, 3], on);
      const w = fg.tensor([1, 1, 1], { ...on, requiresGrad: true });
      expect(() => x.add_(w)).to.throw(/^add_: the other operand requires grad, so the result would need a graph; use the out-of-place op instead$/);
      expect(x.version).to.equal(0);
      expect(await x.tolist()).to.deep.equal([1, 2, 3]);
    });

    it('copy_ from a shape that does not broadcast', async () => {
      const x = fg.zeros([3], on);
      expect(() => x.copy_(fg.ones([4], on))).to.throw(/^copy_: shapes \[3\] and \[4\] cannot be broadcast together/);
      expect(() => x.copy_(fg.ones([2, 3], on))).to.throw(/^copy_: src of shape \[2, 3\] cannot be broadcast to the tensor's shape \[3\]$/);
      expect(await x.tolist()).to.deep.equal([0, 0, 0]);
      x.copy_(fg.ones([1], on));
      expect(await x.tolist()).to.deep.equal([1, 1, 1]);
    });

    it('index of the wrong dtype', async () => {
      const x = fg.tensor([[1, 2, 3], [4, 5, 6]], { ...on, requiresGrad: true });
      const floatIndex = fg.tensor([0, 1], on);
      expect(() => x.gather(1, floatIndex.reshape([2, 1]))).to.throw(TypeError, /^gather: index must be an int32 tensor, got float32; create it with \{ dtype: 'int32' \}$/);
      expect(() => x.indexSelect(0, floatIndex)).to.throw(TypeError, /^indexSelect: index must be an int32 tensor, got float32; create it with \{ dtype: 'int32' \}$/);
      expect(() => F.embedding(floatIndex, x)).to.throw(TypeError, /^embedding: indices must be an int32 tensor of indices, got float32; create it with \{ dtype: 'int32' \} or convert it with \.to\('int32'\)$/);
      expect(() => F.crossEntropy(x, floatIndex)).to.throw(TypeError, /^crossEntropy: target must be an int32 tensor of indices, got float32; create it with \{ dtype: 'int32' \} or convert it with \.to\('int32'\)$/);
      expect(() => F.crossEntropy(x, floatIndex.gt(0))).to.throw(TypeError, /^crossEntropy: target must be an int32 tensor of indices, got bool/);

      const loss = F.crossEntropy(x, floatIndex.to('int32'));
      loss.backward();
      expect(x.grad!.shape).to.deep.equal([2, 3]);
    });

    it('dims out of range', () => {
      const x = fg.ones([3, 4], on);
      expect(() => x.sum(2)).to.throw(RangeError, /^sum: dim 2 is out of range for a tensor of rank 2 \(expected -2 to 1\)$/);
      expect(() => x.mean(-3)).to.throw(RangeError, /^mean: dim -3 is out of range for a tensor of rank 2 \(expected -2 to 1\)$/);
      expect(() => F.softmax(x, 5)).to.throw(RangeError, /^softmax: dim 5 is out of range for a tensor of rank 2 \(expected -2 to 1\)$/);
      expect(() => x.transpose(0, 2)).to.throw(RangeError, /^transpose: dim 2 is out of range for a tensor of rank 2/);
      expect(() => fg.cat([x, x], 2)).to.throw(RangeError, /^cat: dim 2 is out of range for a tensor of rank 2/);
      expect(() => x.argmax(1.5)).to.throw(RangeError, /^argmax: dim 1.5 is out of range/);
      expect(x.sum(-1).shape).to.deep.equal([3]);
    });

    it('dims repeated', () => {
      const x = fg.ones([2, 3, 4], on);
      expect(() => x.sum([1, -2])).to.throw(/^sum: dims \[1, -2\] name dimension 1 more than once; list each dimension once$/);
      expect(() => x.var([0, 0])).to.throw(/^var: dims \[0, 0\] name dimension 0 more than once/);
      expect(() => x.permute(0, 0, 1)).to.throw(/^permute: dims \[0, 0, 1\] must name each of the 3 dimensions of a tensor of shape \[2, 3, 4\] exactly once$/);
      expect(() => x.permute(0, 1)).to.throw(/^permute: dims \[0, 1\] must name each of the 3 dimensions/);
      expect(x.permute(2, 0, 1).shape).to.deep.equal([4, 2, 3]);
    });

    it('reshape to an incompatible shape', async () => {
      const x = fg.arange(12, undefined, 1, { ...on, dtype: 'float32' }).reshape([3, 4]);
      expect(() => x.reshape(5, 3)).to.throw(/^reshape: shape \[5, 3\] is invalid for a tensor of 12 elements \(shape \[3, 4\]\)$/);
      expect(() => x.reshape(-1, 5)).to.throw(/^reshape: shape \[-1, 5\] is invalid for a tensor of 12 elements \(shape \[3, 4\]\)$/);
      expect(() => x.reshape(-1, -1)).to.throw(/^reshape: only one dimension can be -1, got \[-1, -1\]$/);
      expect(() => x.view(2, 2.5)).to.throw(TypeError, /^view: invalid shape \[2, 2\.5\]/);
      expect(() => x.t().view(12)).to.throw(/^view: a tensor of shape \[4, 3\] with strides \[1, 4\] is not contiguous, so it cannot be viewed as \[12\]; use reshape\(\) or call contiguous\(\) first$/);
      expect(await x.reshape(2, -1).sum(1).tolist()).to.deep.equal([15, 51]);
    });
  });
}

errorSuite('cpu');
errorSuite('webgpu');

describe('errors with indices out of range on cpu', () => {
  const on = { device: 'cpu' as const };

  it('crossEntropy class index', async () => {
    const logits = fg.zeros([3, 5], { ...on, requiresGrad: true });
    const target = (values: number[]) => fg.tensor(values, { ...on, dtype: 'int32' });
    const outOfRange = target([0, 5, 1]);
    expectThrowsWithoutLeak('cpu', () => F.crossEntropy(logits, outOfRange),
      /^crossEntropy: target class 5 is out of range for 5 classes \(valid: 0 to 4, or ignoreIndex -100\)$/);
    expect(() => F.crossEntropy(logits, target([0, -1, 1]))).to.throw(RangeError, /^crossEntropy: target class -1 is out of range for 5 classes/);
    expect(() => F.crossEntropy(logits, target([0, -100, 1]), { ignoreIndex: 9 })).to.throw(RangeError, /^crossEntropy: target class -100 is out of range for 5 classes \(valid: 0 to 4, or ignoreIndex 9\)$/);

    const loss = F.crossEntropy(logits, target([0, -100, 4]));
    expect(await loss.item()).to.be.closeTo(Math.log(5), 1e-6);
  });

  it('embedding, gather and indexSelect', () => {
    const weight = fg.zeros([3, 2], on);
    const index = (values: number[], shape = [values.length]) => fg.tensor(values, { ...on, dtype: 'int32', shape });
    expect(() => F.embedding(index([0, 3]), weight)).to.throw(RangeError, /^embedding: index 3 is out of range for numEmbeddings 3 \(valid: 0 to 2\)$/);
    expect(() => weight.gather(1, index([0, 2, 1], [3, 1]))).to.throw(RangeError, /^gather: index 2 is out of range for dim 1 of size 2 \(valid: 0 to 1\)$/);
    expect(() => weight.indexSelect(0, index([-1]))).to.throw(RangeError, /^indexSelect: index -1 is out of range for dim 0 of size 3 \(valid: 0 to 2\)$/);
    expect(weight.indexSelect(0, index([2, 0])).shape).to.deep.equal([2, 2]);
  });
});

describe('errors across devices', function () {
  before(async function () {
    await requireWebGpu(this);
  });

  it('float64 on WebGPU', async () => {
    const fix = /float64 runs only on the CPU backend: use float32 on WebGPU, or put the tensor on the CPU \(\{ device: 'cpu' \} when creating it, await t\.toDevice\('cpu'\) for an existing one\)$/;
    expect(() => fg.tensor([1, 2], { device: 'webgpu', dtype: 'float64' })).to.throw(new RegExp(`^tensor: dtype float64 is not supported on the webgpu backend; ${fix.source}`));
    expect(() => fg.zeros([2], { device: 'webgpu', dtype: 'float64' })).to.throw(/^full: dtype float64 is not supported on the webgpu backend/);
    expect(() => fg.randn([2], { device: 'webgpu', dtype: 'float64' })).to.throw(/^randn: dtype float64 is not supported on the webgpu backend/);
    const t = fg.tensor([1, 2], { device: 'webgpu' });
    expect(() => t.to('float64')).to.throw(new RegExp(`^to: dtype float64 is not supported on the webgpu backend; ${fix.source}`));
    expect(() => t.double()).to.throw(/^to: dtype float64 is not supported on the webgpu backend/);

    expect(await t.mul(2).tolist()).to.deep.equal([2, 4]);
    const moved = await t.toDevice('cpu');
    expect(moved.to('float64').dtype).to.equal('float64');
  });

  it('mixing devices', async () => {
    const gpu = fg.tensor([[1, 2], [3, 4]], { device: 'webgpu', requiresGrad: true });
    const cpu = fg.tensor([[1, 1], [1, 1]], { device: 'cpu' });
    const mixed = /expected all tensors on one device, but found 'webgpu' and 'cpu'; move one with await t\.toDevice\('webgpu'\)$/;
    expect(() => gpu.add(cpu)).to.throw(new RegExp(`^add: ${mixed.source}`));
    expect(() => gpu.matmul(cpu)).to.throw(new RegExp(`^matmul: ${mixed.source}`));
    expect(() => fg.cat([gpu, cpu])).to.throw(new RegExp(`^cat: ${mixed.source}`));
    expect(() => cpu.copy_(gpu)).to.throw(/^copy_: src is on 'webgpu' but the tensor is on 'cpu'; move it with await src\.toDevice\('cpu'\)$/);
    const target = fg.tensor([0, 1], { device: 'cpu', dtype: 'int32' });
    expect(() => F.crossEntropy(gpu, target)).to.throw(new RegExp(`^crossEntropy: ${mixed.source}`));
    expect(() => F.embedding(target, gpu)).to.throw(/^embedding: expected all tensors on one device, but found 'cpu' and 'webgpu'/);
    expect(() => gpu.gather(1, target.reshape([2, 1]))).to.throw(new RegExp(`^gather: ${mixed.source}`));
    const y = gpu.mul(2);
    expect(() => y.backward(fg.ones([2, 2], { device: 'cpu' }))).to.throw(/^backward: gradient is on 'cpu' but the tensor is on 'webgpu'; move it with await gradient\.toDevice\('webgpu'\)$/);

    y.backward(await fg.ones([2, 2], { device: 'cpu' }).toDevice('webgpu'));
    expect(await gpu.grad!.tolist()).to.deep.equal([[2, 2], [2, 2]]);
    expect(await gpu.add(await cpu.toDevice('webgpu')).tolist()).to.deep.equal([[2, 3], [4, 5]]);
  });
});

describe('errors of init without an adapter', () => {
  // A child process stubs navigator.gpu, so that requestAdapter() returns null there and the WebGPU
  // device of this process stays untouched.
  const entry = new URL('../src/index.ts', import.meta.url).href;

  function runWithoutAdapter(body: string): { stdout: string; stderr: string } {
    const script = `globalThis.navigator = { gpu: { requestAdapter: async () => null } };
const fg = await import(${JSON.stringify(entry)});
${body}`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, `child process failed: ${result.stderr}`).to.equal(0);
    return { stdout: result.stdout, stderr: result.stderr };
  }

  it("init({ backend: 'webgpu' }) throws", () => {
    const { stdout } = runWithoutAdapter(`
try {
  await fg.init({ backend: 'webgpu' });
  console.log('no error');
} catch (error) {
  console.log(error.message);
}`);
    expect(stdout.trim()).to.match(
      /^init: no WebGPU adapter is available \(requestAdapter\(\) returned null, so no Vulkan, Metal or D3D12 driver was found\)\. To use WebGPU without a GPU on Debian or Ubuntu, run scripts\/install-lavapipe\.sh .*To run on the CPU backend instead, call fg\.init\(\) or fg\.init\(\{ backend: 'cpu' \}\)\.$/,
    );
  });

  it('init() falls back to the CPU with one warning', () => {
    const { stdout, stderr } = runWithoutAdapter(`
console.log(await fg.init());
console.log(await fg.init());
console.log(fg.tensor([1, 2]).device);`);
    expect(stdout.trim().split('\n')).to.deep.equal(['cpu', 'cpu', 'cpu']);
    const warnings = stderr.split('\n').filter((line) => line.startsWith('fusegrad: '));
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/^fusegrad: no WebGPU adapter \(requestAdapter\(\) returned null, so no Vulkan, Metal or D3D12 driver was found\), so tensors stay on the CPU backend\. To use WebGPU without a GPU/);
  });
});
