// safetensors checkpoints: round trips of every dtype, a file written in Python, a file for Python to
// check, the errors for corrupted files, atomic writes, optimizer state and CPU checkpoints on WebGPU.
//
// This suite writes $TMPDIR/fusegrad-written.safetensors. To check that Python reads it, run
//   /usr/bin/python3.11 scripts/fixtures_optim.py check-safetensors $TMPDIR/fusegrad-written.safetensors

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import * as fg from '../src/index.js';
import { requireWebGpu, seededValues } from './helpers/setup.js';

interface ExpectedTensor {
  name: string;
  dtype: 'F64' | 'F32' | 'I32' | 'F16' | 'BOOL';
  shape: number[];
  values: number[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/safetensors.json', import.meta.url), 'utf8')) as {
  cases: { metadata: Record<string, string>; tensors: ExpectedTensor[] }[];
};
const expected = fixture.cases[0];
const PYTHON_FILE = new URL('./fixtures/python-written.safetensors', import.meta.url);

const DTYPES: Record<ExpectedTensor['dtype'], fg.DType> = { F64: 'float64', F32: 'float32', I32: 'int32', F16: 'float16', BOOL: 'bool' };

function fixtureTensors(device: fg.DeviceName): Record<string, fg.Tensor> {
  return Object.fromEntries(expected.tensors.map((e) => [e.name, fg.tensor(e.values, { shape: e.shape, dtype: DTYPES[e.dtype], device })]));
}

async function expectFixtureTensors(tensors: Record<string, fg.Tensor>): Promise<void> {
  expect(Object.keys(tensors).sort()).to.deep.equal(expected.tensors.map((e) => e.name).sort());
  for (const e of expected.tensors) {
    const t = tensors[e.name];
    expect(t.dtype, `${e.name} dtype`).to.equal(DTYPES[e.dtype]);
    expect([...t.shape], `${e.name} shape`).to.deep.equal(e.shape);
    expect(Array.from(await t.toArray()), `${e.name} values`).to.deep.equal(e.values);
  }
}

/** Encodes a safetensors file from a header object and a data section, for the corruption tests. */
function encodeFile(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function webGpuHasFloat16(): boolean {
  try {
    fg.zeros([1], { dtype: 'float16', device: 'webgpu' }).dispose();
    return true;
  } catch {
    return false;
  }
}

class Tiny extends fg.nn.Module {
  weight: fg.Tensor;
  bias: fg.Tensor;

  constructor(device: fg.DeviceName) {
    super();
    const random = seededValues(3);
    this.weight = fg.nn.parameter(fg.tensor(Array.from({ length: 6 }, () => random() - 0.5), { shape: [2, 3], device }));
    this.bias = fg.nn.parameter(fg.zeros([2], { device }));
  }

  forward(x: fg.Tensor): fg.Tensor {
    return x.matmul(this.weight.t()).add(this.bias);
  }
}

describe('safetensors checkpoints', function () {
  let dir: string;

  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'fusegrad-checkpoint-'));
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('round trip of every dtype on the CPU', async function () {
    const path = join(dir, 'all.safetensors');
    await fg.save(fixtureTensors('cpu'), path, { metadata: { note: 'round trip' } });
    const { tensors, metadata } = await fg.io.loadFile(path, { device: 'cpu' });
    await expectFixtureTensors(tensors);
    expect(metadata).to.deep.equal({ note: 'round trip' });
  });

  it('loads the file written in Python', async function () {
    const { tensors, metadata } = await fg.io.loadFile(PYTHON_FILE.pathname, { device: 'cpu' });
    await expectFixtureTensors(tensors);
    expect(metadata).to.deep.equal(expected.metadata);
  });

  it('writes the bytes the Python writer writes', async function () {
    const bytes = await fg.io.serialize(fixtureTensors('cpu'), expected.metadata);
    expect(Buffer.from(bytes).equals(readFileSync(PYTHON_FILE))).to.equal(true);
  });

  it('writes a file for the Python check', async function () {
    const path = join(tmpdir(), 'fusegrad-written.safetensors');
    await fg.save(fixtureTensors('cpu'), path, { metadata: { writer: 'test/checkpoint.test.ts' } });
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8, 'header padded to 8 bytes').to.equal(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    expect(header.__metadata__).to.deep.equal({ writer: 'test/checkpoint.test.ts' });
    expect(header['layer.weight']).to.deep.equal({ dtype: 'F32', shape: [3, 4], data_offsets: [40, 88] });
  });

  it('save replaces a file atomically and leaves no temporary file', async function () {
    const path = join(dir, 'atomic.safetensors');
    writeFileSync(path, 'old contents');
    await fg.save({ x: fg.tensor([1, 2], { device: 'cpu' }) }, path);
    expect(Array.from(await (await fg.load(path, { device: 'cpu' })).x.toArray())).to.deep.equal([1, 2]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('save into a missing folder fails clearly', async function () {
    const path = join(dir, 'missing', 'x.safetensors');
    let message = '';
    await fg.save({ x: fg.tensor([1], { device: 'cpu' }) }, path).catch((e: Error) => (message = e.message));
    expect(message).to.match(/^save: cannot write to the folder of '.*missing\/x.safetensors': ENOENT/);
  });

  it('save rejects non-tensors and bad metadata', async function () {
    const path = join(dir, 'bad.safetensors');
    let message = '';
    await fg.save({ x: [1, 2] as unknown as fg.Tensor }, path).catch((e: Error) => (message = e.message));
    expect(message).to.equal("save: 'x' is not a Tensor");
    await fg.save({ x: fg.tensor([1], { device: 'cpu' }) }, path, { metadata: { step: 3 as unknown as string } }).catch((e: Error) => (message = e.message));
    expect(message).to.equal("save: metadata value 'step' must be a string, got number; use JSON.stringify for other values");
  });

  describe('corrupted files', function () {
    const f32 = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    const header = (entries: Record<string, unknown>) => entries;
    const cases: { name: string; bytes: () => Uint8Array; error: string }[] = [
      { name: 'empty file', bytes: () => new Uint8Array(0), error: 'it has 0 bytes, fewer than the 8-byte header length' },
      {
        name: 'header length beyond the file',
        bytes: () => encodeFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32).subarray(0, 20),
        error: 'but only 12 bytes follow it; the file is truncated',
      },
      { name: 'invalid JSON', bytes: () => encodeFile(null, f32, '{"a": {"dtype": "F32",'), error: 'the header is not valid UTF-8 JSON' },
      { name: 'a JSON array', bytes: () => encodeFile([], new Uint8Array(0)), error: 'the header is not a JSON object' },
      {
        name: 'truncated data',
        bytes: () => encodeFile(header({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), f32.subarray(0, 12)),
        error: "the data_offsets [0, 16] of tensor 'a' go beyond the 12 bytes of data; the file is truncated",
      },
      {
        name: 'overlapping tensors',
        bytes: () => encodeFile(header({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }), f32),
        error: "the data of tensors 'a' and 'b' overlap",
      },
      {
        name: 'a gap in the data',
        bytes: () => encodeFile(header({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }), f32.subarray(0, 12)),
        error: 'bytes 4 to 8 of the data section belong to no tensor',
      },
      {
        name: 'unused trailing bytes',
        bytes: () => encodeFile(header({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }), f32),
        error: 'the tensors cover 12 bytes of data, but the data section has 16 bytes',
      },
      {
        name: 'unknown dtype',
        bytes: () => encodeFile(header({ a: { dtype: 'BF16', shape: [8], data_offsets: [0, 16] } }), f32),
        error: "tensor 'a' has dtype \"BF16\", which fusegrad does not read (it reads F64, F32, I32, F16, BOOL)",
      },
      {
        name: 'size not matching the shape',
        bytes: () => encodeFile(header({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }), f32),
        error: "tensor 'a' of shape [2, 3] and dtype F32 needs 24 bytes, but its data_offsets span 16",
      },
      {
        name: 'negative shape',
        bytes: () => encodeFile(header({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }), f32),
        error: "tensor 'a' has an invalid shape [-4]",
      },
      {
        name: 'reversed offsets',
        bytes: () => encodeFile(header({ a: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } }), f32),
        error: "tensor 'a' has invalid data_offsets [16,0]",
      },
      {
        name: 'metadata that is not a string map',
        bytes: () => encodeFile(header({ __metadata__: { step: 3 }, a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), f32),
        error: '"__metadata__" must be an object of strings',
      },
    ];

    for (const c of cases) {
      it(c.name, async function () {
        const path = join(dir, 'corrupt.safetensors');
        writeFileSync(path, c.bytes());
        let message = '';
        await fg.load(path, { device: 'cpu' }).catch((e: Error) => (message = e.message));
        expect(message).to.contain('load: invalid safetensors file: ');
        expect(message).to.contain(c.error);
        expect(message).to.contain(path);
      });
    }

    it('missing file', async function () {
      let message = '';
      await fg.load(join(dir, 'nowhere.safetensors')).catch((e: Error) => (message = e.message));
      expect(message).to.match(/^load: no file at '.*nowhere.safetensors'$/);
    });
  });

  it('optimizer state round trip continues training exactly', async function () {
    const steps = async (model: Tiny, optimizer: fg.optim.Adam, count: number) => {
      const x = fg.tensor([[1, 2, 3], [-1, 0.5, 2]], { device: 'cpu' });
      for (let i = 0; i < count; i++) {
        fg.tidy(() => {
          optimizer.zeroGrad();
          model.forward(x).square().mean().backward();
          optimizer.step();
        });
      }
    };
    const straight = new Tiny('cpu');
    const straightOpt = new fg.optim.Adam(straight.parameters(), { lr: 0.05, amsgrad: true });
    await steps(straight, straightOpt, 6);

    const first = new Tiny('cpu');
    const firstOpt = new fg.optim.Adam(first.parameters(), { lr: 0.05, amsgrad: true });
    await steps(first, firstOpt, 3);
    await fg.save(first.stateDict(), join(dir, 'model.safetensors'));
    await fg.save(firstOpt.stateDict(), join(dir, 'optimizer.safetensors'));

    const resumed = new Tiny('cpu');
    const resumedOpt = new fg.optim.Adam(resumed.parameters(), { lr: 0.5 });
    resumed.loadStateDict(await fg.load(join(dir, 'model.safetensors'), { device: 'cpu' }));
    resumedOpt.loadStateDict(await fg.loadOptimizerState(join(dir, 'optimizer.safetensors'), { device: 'cpu' }));
    expect(resumedOpt.paramGroups[0].lr).to.equal(0.05);
    expect(resumedOpt.paramGroups[0].amsgrad).to.equal(true);
    expect(resumedOpt.state.get(resumed.weight)?.step).to.equal(3);
    await steps(resumed, resumedOpt, 3);
    expect(Array.from(await resumed.weight.toArray())).to.deep.equal(Array.from(await straight.weight.toArray()));
    expect(Array.from(await resumed.bias.toArray())).to.deep.equal(Array.from(await straight.bias.toArray()));
  });

  it('loadOptimizerState rejects a model file', async function () {
    const path = join(dir, 'plain.safetensors');
    await fg.save({ x: fg.tensor([1], { device: 'cpu' }) }, path);
    let message = '';
    await fg.loadOptimizerState(path).catch((e: Error) => (message = e.message));
    expect(message).to.contain('holds no optimizer state');
  });

  describe('on WebGPU', function () {
    before(async function () {
      await requireWebGpu(this);
    });

    it('round trip of the WebGPU dtypes', async function () {
      const path = join(dir, 'gpu.safetensors');
      const tensors = fixtureTensors('cpu');
      const onGpu: Record<string, fg.Tensor> = {};
      for (const [name, t] of Object.entries(tensors)) {
        if (t.dtype === 'float64' || (t.dtype === 'float16' && !webGpuHasFloat16())) continue;
        onGpu[name] = await t.toDevice('webgpu');
      }
      await fg.save(onGpu, path);
      const loaded = await fg.load(path, { device: 'webgpu' });
      expect(Object.keys(loaded).sort()).to.deep.equal(Object.keys(onGpu).sort());
      for (const [name, t] of Object.entries(loaded)) {
        expect(t.device).to.equal('webgpu');
        expect(Array.from(await t.toArray()), name).to.deep.equal(Array.from(await tensors[name].toArray()));
      }
    });

    it('a CPU checkpoint loads into a WebGPU model', async function () {
      const path = join(dir, 'tiny.safetensors');
      const source = new Tiny('cpu');
      await fg.save(source.stateDict(), path);
      const model = new Tiny('webgpu');
      fg.noGrad(() => model.weight.zero_());
      model.loadStateDict(await fg.load(path, { device: 'cpu' }));
      expect(model.weight.device).to.equal('webgpu');
      expect(Array.from(await model.weight.toArray())).to.deep.equal(Array.from(await source.weight.toArray()));
    });

    it('a WebGPU state dict does not load into a CPU model', async function () {
      const model = new Tiny('cpu');
      const gpuWeights = { weight: await model.weight.toDevice('webgpu'), bias: await model.bias.toDevice('webgpu') };
      expect(() => model.loadStateDict(gpuWeights)).to.throw("weight is on 'webgpu' but the model is on 'cpu'; load the checkpoint with fg.load(path, { device: 'cpu' })");
    });

    it('optimizer state from a CPU file resumes on WebGPU', async function () {
      const p = fg.tensor([1, 2, 3], { device: 'cpu', requiresGrad: true });
      const optimizer = new fg.optim.AdamW([p], { lr: 0.1 });
      p.grad = fg.tensor([0.5, -1, 2], { device: 'cpu' });
      optimizer.step();
      optimizer.step();
      const path = join(dir, 'adamw.safetensors');
      await fg.save(optimizer.stateDict(), path);

      const q = await fg.tensor([1, 2, 3], { device: 'cpu' }).toDevice('webgpu');
      q.requiresGrad_(true);
      const gpuOptimizer = new fg.optim.AdamW([q], { lr: 0.1 });
      gpuOptimizer.loadStateDict(await fg.loadOptimizerState(path, { device: 'cpu' }));
      const expAvg = gpuOptimizer.state.get(q)?.expAvg as fg.Tensor;
      expect(expAvg.device).to.equal('webgpu');
      expect(Array.from(await expAvg.toArray())).to.deep.equal(Array.from(await (optimizer.state.get(p)?.expAvg as fg.Tensor).toArray()));
    });
  });
});
