// Tests of the fg.nn layers. PyTorch 1.13 fixtures check forward values and gradients, with weights loaded
// by torch's names, on the CPU backend in float64 and float32 and on WebGPU in float32. Every layer also
// gets a float64 gradcheck on the CPU backend with its parameters as inputs. The rest covers names,
// initialization, masks, bad input and memory.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { requireWebGpu, seededValues, settleGarbage } from './helpers/setup.js';
import { checkNnCase, loadNnFixtures } from './helpers/nn-fixtures.js';

const nn = fg.nn;
const CPU64 = { dtype: 'float64', device: 'cpu' } as const;
const fixtures = loadNnFixtures();

function randomTensor(shape: number[], seed: number, options: { dtype?: fg.DType; device?: fg.DeviceName; requiresGrad?: boolean } = CPU64): fg.Tensor {
  const random = seededValues(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return fg.tensor(Array.from({ length: n }, () => random() * 2 - 1), { shape, dtype: 'float64', device: 'cpu', ...options });
}

/** Flattens all outputs into one vector, so that gradcheck weighs every one of them. */
function flat(...tensors: fg.Tensor[]): fg.Tensor {
  return fg.cat(tensors.map((t) => t.reshape([-1])));
}

/** float64 gradcheck with respect to the inputs and every parameter of the module. */
async function gradcheckModule(module: fg.nn.Module, inputs: fg.Tensor[], run: () => fg.Tensor): Promise<void> {
  const result = await fg.gradcheck(() => run(), [...inputs, ...module.parameters()], { eps: 1e-6, atol: 1e-6, rtol: 1e-4 });
  expect(result.ok).to.equal(true);
}

async function values(t: fg.Tensor): Promise<number[]> {
  return Array.from(await t.toArray());
}

function expectAllClose(actual: number[], expected: number[], tolerance = 1e-9): void {
  expect(actual.length).to.equal(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]), `element ${i}: ${a} vs ${expected[i]}`).to.be.at.most(tolerance));
}

// ---- PyTorch fixtures ----

const CONFIGS = [
  { device: 'cpu', dtype: 'float64', tolerance: { rtol: 1e-9, atol: 1e-9 } },
  { device: 'cpu', dtype: 'float32', tolerance: { rtol: 2e-5, atol: 2e-5 } },
  { device: 'webgpu', dtype: 'float32', tolerance: { rtol: 2e-5, atol: 2e-5 } },
] as const;

for (const { device, dtype, tolerance } of CONFIGS) {
  describe(`nn layers against PyTorch ${fixtures.torch} on ${device} in ${dtype}`, function () {
    if (device === 'webgpu') {
      before(async function () {
        await requireWebGpu(this);
      });
    }
    for (const c of fixtures.cases) {
      it(c.name, () => checkNnCase(c, { device, dtype }, tolerance));
    }
  });
}

// ---- gradcheck of every layer ----

describe('nn layers: float64 gradcheck on the CPU backend', () => {
  beforeEach(() => fg.manualSeed(7));

  it('Linear with leading dims', async () => {
    const layer = new nn.Linear(3, 4, CPU64);
    const x = randomTensor([2, 3, 3], 1, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x], () => layer.forward(x));
  });

  it('Linear without bias on a vector', async () => {
    const layer = new nn.Linear(5, 2, { ...CPU64, bias: false });
    expect(layer.bias).to.equal(null);
    const x = randomTensor([5], 2, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x], () => layer.forward(x));
  });

  // With paddingIdx the padding row deliberately gets no gradient, which no finite difference can confirm.
  // The fixtures and 'Embedding: padding row returned but not trained' cover that case.
  it('Embedding with repeated indices', async () => {
    const layer = new nn.Embedding(5, 3, CPU64);
    const indices = fg.tensor([[0, 2, 4], [2, 1, 1]], { dtype: 'int32', device: 'cpu' });
    await gradcheckModule(layer, [], () => layer.forward(indices));
  });

  it('Dropout in training mode with a fixed seed', async () => {
    const layer = new nn.Dropout(0.4);
    const x = randomTensor([4, 6], 3, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x], () => {
      fg.manualSeed(11);
      return layer.forward(x);
    });
  });

  it('activations and Sequential', async () => {
    const model = new nn.Sequential(new nn.Linear(3, 5, CPU64), new nn.GELU(), new nn.Linear(5, 4, CPU64), new nn.Tanh(),
      new nn.Linear(4, 4, CPU64), new nn.GELU({ approximate: 'tanh' }), new nn.Sigmoid(), new nn.ReLU());
    const x = randomTensor([3, 3], 4, { ...CPU64, requiresGrad: true });
    await gradcheckModule(model, [x], () => model.forward(x));
  });

  it('MultiheadAttention: causal self-attention with key padding', async () => {
    const layer = new nn.MultiheadAttention(4, 2, CPU64);
    const x = randomTensor([3, 2, 4], 5, { ...CPU64, requiresGrad: true });
    const padding = fg.tensor([[false, false, false], [false, true, false]], { device: 'cpu' });
    await gradcheckModule(layer, [x], () => {
      const [out, weights] = layer.forward(x, x, x, { isCausal: true, keyPaddingMask: padding });
      return flat(out, weights!);
    });
  });

  it('MultiheadAttention: cross-attention, batch first, weights per head', async () => {
    const layer = new nn.MultiheadAttention(6, 3, { ...CPU64, batchFirst: true });
    const q = randomTensor([2, 2, 6], 6, { ...CPU64, requiresGrad: true });
    const k = randomTensor([2, 4, 6], 7, { ...CPU64, requiresGrad: true });
    const v = randomTensor([2, 4, 6], 8, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [q, k, v], () => {
      const [out, weights] = layer.forward(q, k, v, { averageAttnWeights: false });
      return flat(out, weights!);
    });
  });

  it('TransformerBlock', async () => {
    const block = new nn.TransformerBlock(4, 2, { ...CPU64, mlpRatio: 2 });
    const x = randomTensor([2, 3, 4], 9, { ...CPU64, requiresGrad: true });
    await gradcheckModule(block, [x], () => block.forward(x));
  });

  it('RNN: tanh, 2 layers, initial state', async () => {
    const layer = new nn.RNN(3, 4, { ...CPU64, numLayers: 2 });
    const x = randomTensor([3, 2, 3], 10, { ...CPU64, requiresGrad: true });
    const h0 = randomTensor([2, 2, 4], 11, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x, h0], () => flat(...layer.forward(x, h0)));
  });

  it('RNN: relu, batch first', async () => {
    const layer = new nn.RNN(2, 3, { ...CPU64, nonlinearity: 'relu', batchFirst: true });
    const x = randomTensor([2, 4, 2], 12, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x], () => flat(...layer.forward(x)));
  });

  it('LSTM: 2 layers, batch first, initial state', async () => {
    const layer = new nn.LSTM(3, 2, { ...CPU64, numLayers: 2, batchFirst: true });
    const x = randomTensor([2, 3, 3], 13, { ...CPU64, requiresGrad: true });
    const h0 = randomTensor([2, 2, 2], 14, { ...CPU64, requiresGrad: true });
    const c0 = randomTensor([2, 2, 2], 15, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x, h0, c0], () => {
      const [out, [h, c]] = layer.forward(x, [h0, c0]);
      return flat(out, h, c);
    });
  });

  it('LSTM: unbatched, no bias', async () => {
    const layer = new nn.LSTM(2, 3, { ...CPU64, bias: false });
    const x = randomTensor([4, 2], 16, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x], () => {
      const [out, [h, c]] = layer.forward(x);
      return flat(out, h, c);
    });
  });

  it('LSTM: layerNorm, 2 layers, initial state', async () => {
    const layer = new nn.LSTM(3, 2, { ...CPU64, numLayers: 2, layerNorm: true });
    const x = randomTensor([3, 2, 3], 17, { ...CPU64, requiresGrad: true });
    const h0 = randomTensor([2, 2, 2], 18, { ...CPU64, requiresGrad: true });
    const c0 = randomTensor([2, 2, 2], 19, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x, h0, c0], () => {
      const [out, [h, c]] = layer.forward(x, [h0, c0]);
      return flat(out, h, c);
    });
  });

  it('GRU: 2 layers, initial state', async () => {
    const layer = new nn.GRU(3, 2, { ...CPU64, numLayers: 2 });
    const x = randomTensor([3, 2, 3], 20, { ...CPU64, requiresGrad: true });
    const h0 = randomTensor([2, 2, 2], 21, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x, h0], () => flat(...layer.forward(x, h0)));
  });

  it('GRU: layerNorm, batch first, no bias', async () => {
    const layer = new nn.GRU(2, 3, { ...CPU64, batchFirst: true, layerNorm: true, bias: false });
    const x = randomTensor([2, 3, 2], 22, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x], () => flat(...layer.forward(x)));
  });

  it('GRU: layerNorm, initial state, dropout between layers', async () => {
    const layer = new nn.GRU(2, 2, { ...CPU64, numLayers: 2, layerNorm: true, dropout: 0.3 });
    const x = randomTensor([3, 2, 2], 23, { ...CPU64, requiresGrad: true });
    const h0 = randomTensor([2, 2, 2], 24, { ...CPU64, requiresGrad: true });
    await gradcheckModule(layer, [x, h0], () => {
      fg.manualSeed(3);
      return flat(...layer.forward(x, h0));
    });
  });
});

// ---- modules, names and state dicts ----

class TinyModel extends nn.Module {
  embed = new nn.Embedding(10, 4);
  blocks = new nn.ModuleList([new nn.TransformerBlock(4, 2), new nn.TransformerBlock(4, 2)]);
  heads = [new nn.Linear(4, 3), new nn.Linear(4, 2)];

  forward(indices: fg.Tensor): fg.Tensor {
    let x = this.embed.forward(indices);
    for (const block of this.blocks) x = block.forward(x);
    return this.heads[0].forward(x);
  }
}

describe('nn modules: names and state dicts', () => {
  it('names ModuleList children by index', () => {
    const names = new TinyModel().namedParameters().map(([name]) => name);
    expect(names).to.include('blocks.0.attn.inProjWeight');
    expect(names).to.include('blocks.1.attn.outProj.weight');
    expect(names).to.include('blocks.1.mlp.2.bias');
    expect(names).to.include('heads.1.weight');
    expect(names[0]).to.equal('embed.weight');
  });

  it('lists modules and children', () => {
    const model = new TinyModel();
    const children = [...model.namedChildren()].map(([name]) => name);
    expect(children).to.deep.equal(['embed', 'blocks', 'heads.0', 'heads.1']);
    const modules = [...model.namedModules()].map(([name]) => name);
    expect(modules).to.include('blocks.0.attn.outProj');
    expect(modules[0]).to.equal('');
  });

  it('propagates eval() through ModuleList and Sequential', () => {
    const model = new TinyModel().eval();
    for (const module of model.modules()) expect(module.training, module.constructor.name).to.equal(false);
    model.train();
    expect(model.blocks.get(-1).mlp.get(1).training).to.equal(true);
  });

  it('ModuleList indexing and errors', () => {
    const list = new nn.ModuleList([new nn.ReLU()]).append(new nn.Tanh());
    expect(list.length).to.equal(2);
    expect(list.get(1)).to.be.instanceOf(nn.Tanh);
    expect(() => list.get(2)).to.throw(/index 2 is out of range for 2 modules/);
    expect(() => list.forward()).to.throw(/has no forward/);
    expect(() => new nn.ModuleList([{} as fg.nn.Module])).to.throw(/item 0 must be an nn.Module, got object/);
  });

  it('Sequential names and chaining', async () => {
    const model = new nn.Sequential(new nn.Linear(2, 3, CPU64), new nn.ReLU(), new nn.Linear(3, 1, CPU64));
    expect(model.namedParameters().map(([n]) => n)).to.deep.equal(['0.weight', '0.bias', '2.weight', '2.bias']);
    const x = randomTensor([4, 2], 30);
    const expected = (model.get(2) as fg.nn.Linear).forward((model.get(1) as fg.nn.ReLU).forward((model.get(0) as fg.nn.Linear).forward(x)));
    expectAllClose(await values(model.forward(x)), await values(expected), 0);
  });

  it('maps torch names to camelCase and back', () => {
    const pairs = [
      ['weight_ih_l0', 'weightIh_l0'], ['bias_hh_l12', 'biasHh_l12'], ['in_proj_weight', 'inProjWeight'],
      ['blocks.0.attn.out_proj.weight', 'blocks.0.attn.outProj.weight'], ['ln_weight_c_l1', 'lnWeightC_l1'],
      ['weight_hh_l0_reverse', 'weightHh_l0_reverse'], ['mlp.2.bias', 'mlp.2.bias'], ['ln_1.weight', 'ln_1.weight'],
    ];
    for (const [torch, ours] of pairs) {
      expect(nn.utils.fromTorchName(torch), torch).to.equal(ours);
      expect(nn.utils.toTorchName(ours), ours).to.equal(torch);
    }
  });

  it('names recurrent parameters as torch does', () => {
    const lstm = new nn.LSTM(3, 4, { numLayers: 2, layerNorm: true });
    expect(lstm.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`)).to.deep.equal([
      'weightIh_l0:16x3', 'weightHh_l0:16x4', 'biasIh_l0:16', 'biasHh_l0:16',
      'lnWeightIh_l0:16', 'lnWeightHh_l0:16', 'lnWeightC_l0:4', 'lnBiasC_l0:4',
      'weightIh_l1:16x4', 'weightHh_l1:16x4', 'biasIh_l1:16', 'biasHh_l1:16',
      'lnWeightIh_l1:16', 'lnWeightHh_l1:16', 'lnWeightC_l1:4', 'lnBiasC_l1:4',
    ]);
    const gru = new nn.GRU(2, 3, { bias: false });
    expect(gru.namedParameters().map(([n]) => n)).to.deep.equal(['weightIh_l0', 'weightHh_l0']);
  });

  it('loadStateDict names unmapped torch keys and shape mismatches', () => {
    const gru = new nn.GRU(2, 3);
    const torchStyle = { weight_ih_l0: fg.zeros([9, 2]), weight_hh_l0: fg.zeros([9, 3]), bias_ih_l0: fg.zeros([9]), bias_hh_l0: fg.zeros([9]) };
    expect(() => gru.loadStateDict(torchStyle)).to.throw(/missing keys: weightIh_l0, weightHh_l0, biasIh_l0, biasHh_l0; unexpected keys: weight_ih_l0/);
    const mapped = Object.fromEntries(Object.entries(torchStyle).map(([k, v]) => [nn.utils.fromTorchName(k), v]));
    expect(gru.loadStateDict(mapped)).to.deep.equal({ missingKeys: [], unexpectedKeys: [] });
    mapped.weightHh_l0 = fg.zeros([3, 9]);
    expect(() => gru.loadStateDict(mapped)).to.throw(/shape mismatch for weightHh_l0: checkpoint \[3, 9\], model \[9, 3\]/);
  });

  it('keeps parameters of modules built inside tidy()', async () => {
    const layer = fg.tidy(() => new nn.LSTM(2, 2));
    expect(layer.parameters().every((p) => !p.isDisposed)).to.equal(true);
    const [out] = layer.forward(fg.ones([1, 1, 2]));
    expect(out.shape).to.deep.equal([1, 1, 2]);
  });
});

// ---- initialization ----

/** max |t| and the mean and variance of its values. */
async function stats(t: fg.Tensor): Promise<{ max: number; mean: number; variance: number }> {
  const v = await values(t);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
  return { max: Math.max(...v.map(Math.abs)), mean, variance };
}

describe('nn initialization', () => {
  it('repeats with fg.manualSeed', async () => {
    fg.manualSeed(42);
    const a = new nn.LSTM(3, 5, CPU64);
    fg.manualSeed(42);
    const b = new nn.LSTM(3, 5, CPU64);
    for (const [[name, p], [, q]] of a.namedParameters().map((entry, i) => [entry, b.namedParameters()[i]])) {
      expect(await values(p), name).to.deep.equal(await values(q));
    }
    const c = new nn.LSTM(3, 5, CPU64);
    expect(await values(c.weightIh_l0)).to.not.deep.equal(await values(a.weightIh_l0));
  });

  it('Linear: U(-1/sqrt(in), 1/sqrt(in))', async () => {
    fg.manualSeed(1);
    const layer = new nn.Linear(64, 200, CPU64);
    const bound = 1 / 8;
    for (const p of [layer.weight, layer.bias!]) {
      const s = await stats(p);
      expect(s.max).to.be.at.most(bound);
      expect(s.max).to.be.above(bound * 0.95);
      expect(s.variance).to.be.closeTo(bound * bound / 3, bound * bound / 3 * 0.15);
    }
  });

  it('recurrent layers: U(-1/sqrt(hidden), 1/sqrt(hidden))', async () => {
    fg.manualSeed(2);
    const bound = 1 / 8;
    for (const layer of [new nn.RNN(7, 64, CPU64), new nn.LSTM(7, 64, CPU64), new nn.GRU(7, 64, CPU64)]) {
      for (const [name, p] of layer.namedParameters()) {
        const s = await stats(p);
        expect(s.max, `${layer.constructor.name}.${name}`).to.be.at.most(bound);
        expect(s.max, `${layer.constructor.name}.${name}`).to.be.above(bound * 0.9);
      }
    }
  });

  it('Embedding: N(0, 1) with a zero padding row', async () => {
    fg.manualSeed(3);
    const layer = new nn.Embedding(400, 10, { ...CPU64, paddingIdx: -2 });
    expect(layer.paddingIdx).to.equal(398);
    const s = await stats(layer.weight);
    expect(s.mean).to.be.closeTo(0, 0.1);
    expect(s.variance).to.be.closeTo(1, 0.1);
    expect(await values(layer.weight.narrow(0, 398, 1))).to.deep.equal(new Array(10).fill(0));
  });

  it('MultiheadAttention: Xavier in-projection and zero biases', async () => {
    fg.manualSeed(4);
    const layer = new nn.MultiheadAttention(32, 4, CPU64);
    const s = await stats(layer.inProjWeight);
    const bound = Math.sqrt(6 / (32 + 96));
    expect(s.max).to.be.at.most(bound);
    expect(s.max).to.be.above(bound * 0.95);
    expect(await values(layer.inProjBias!)).to.deep.equal(new Array(96).fill(0));
    expect(await values(layer.outProj.bias!)).to.deep.equal(new Array(32).fill(0));
    expect((await stats(layer.outProj.weight)).max).to.be.at.most(1 / Math.sqrt(32));
  });

  it('fg.nn.init fills tensors in place', async () => {
    const t = fg.zeros([50, 20], { dtype: 'float64', device: 'cpu' });
    nn.init.uniform_(t, 2, 3);
    const s = await stats(t);
    expect(s.mean).to.be.closeTo(2.5, 0.05);
    nn.init.xavierUniform_(t);
    expect((await stats(t)).max).to.be.at.most(Math.sqrt(6 / 70));
    nn.init.constant_(t, 0.5);
    expect((await stats(t)).variance).to.equal(0);
    expect(() => nn.init.kaimingUniform_(fg.zeros([3]))).to.throw(/at least 2 dims/);
  });
});

// ---- behaviour and bad input ----

describe('nn layers: behaviour and errors', () => {
  it('Embedding: padding row returned but not trained', async () => {
    const layer = new nn.Embedding(4, 2, { ...CPU64, paddingIdx: 0 });
    fg.noGrad(() => layer.weight.fill_(1));
    const out = layer.forward(fg.tensor([0, 1, 0, 3], { dtype: 'int32', device: 'cpu' }));
    expect(await values(out)).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 1]);
    out.sum().backward();
    expect(await values(layer.weight.grad!)).to.deep.equal([0, 0, 1, 1, 0, 0, 1, 1]);
  });

  it('Embedding: rejects float indices and a bad paddingIdx', () => {
    const layer = new nn.Embedding(4, 2, CPU64);
    expect(() => layer.forward(fg.tensor([1], { device: 'cpu' }))).to.throw(/indices must be an int32 tensor, got float32/);
    expect(() => new nn.Embedding(4, 2, { paddingIdx: 4 })).to.throw(/paddingIdx 4 must be an integer within numEmbeddings 4/);
    expect(() => layer.forward(fg.tensor([4], { dtype: 'int32', device: 'cpu' }))).to.throw(/index 4 is out of range/);
  });

  it('Linear: rejects a wrong feature size', () => {
    const layer = new nn.Linear(3, 2, CPU64);
    expect(() => layer.forward(fg.zeros([2, 4], CPU64))).to.throw(/input of shape \[2, 4\] does not end in inFeatures 3/);
    expect(() => new nn.Linear(2.5, 1)).to.throw(/inFeatures must be a non-negative integer/);
  });

  it('Dropout: scales in training, copies in eval', async () => {
    const layer = new nn.Dropout(0.5);
    const x = fg.ones([1000], CPU64);
    const kept = await values(layer.forward(x));
    expect(new Set(kept)).to.deep.equal(new Set([0, 2]));
    expect(kept.filter((v) => v === 0).length).to.be.within(400, 600);
    layer.eval();
    expect(await values(layer.forward(x))).to.deep.equal(new Array(1000).fill(1));
    expect(() => new nn.Dropout(1.5)).to.throw(/between 0 and 1, got 1.5/);
  });

  it('MultiheadAttention: isCausal equals an explicit mask', async () => {
    const layer = new nn.MultiheadAttention(4, 2, CPU64);
    const x = randomTensor([5, 2, 4], 31);
    const mask = fg.tensor(Array.from({ length: 25 }, (_, k) => k % 5 > Math.floor(k / 5)), { shape: [5, 5], device: 'cpu' });
    const [a, wa] = layer.forward(x, x, x, { isCausal: true });
    const [b, wb] = layer.forward(x, x, x, { attnMask: mask });
    expectAllClose(await values(a), await values(b), 0);
    expectAllClose(await values(wa!), await values(wb!), 0);
    const w = await values(wa!);
    expect(w[1]).to.equal(0);
    expect(w[0]).to.be.closeTo(1, 1e-12);
  });

  it('MultiheadAttention: needWeights false and unbatched shapes', () => {
    const layer = new nn.MultiheadAttention(4, 1, { ...CPU64, batchFirst: true });
    const [out, weights] = layer.forward(randomTensor([3, 4], 32), randomTensor([6, 4], 33), randomTensor([6, 4], 34), { needWeights: false });
    expect(out.shape).to.deep.equal([3, 4]);
    expect(weights).to.equal(null);
  });

  it('MultiheadAttention: clear errors', () => {
    expect(() => new nn.MultiheadAttention(6, 4)).to.throw(/embedDim 6 must be divisible by numHeads 4/);
    const layer = new nn.MultiheadAttention(4, 2, CPU64);
    const x = randomTensor([3, 2, 4], 35);
    expect(() => layer.forward(x, randomTensor([3, 2, 5], 36), x)).to.throw(/key of shape \[3, 2, 5\] must end in embedDim 4/);
    expect(() => layer.forward(x, randomTensor([3, 1, 4], 37), x)).to.throw(/must share the batch size/);
    expect(() => layer.forward(x, x, x, { attnMask: fg.zeros([2, 3], CPU64) })).to.throw(/attnMask must have shape \[3, 3\] or \[4, 3, 3\], got \[2, 3\]/);
    expect(() => layer.forward(x, x, x, { keyPaddingMask: fg.zeros([3, 2], { dtype: 'bool', device: 'cpu' }) })).to.throw(/keyPaddingMask must have shape \[2, 3\]/);
    expect(() => layer.forward(x, x, x, { attnMask: fg.zeros([3, 3], { dtype: 'int32', device: 'cpu' }) })).to.throw(/must be bool .* or floating point/);
  });

  it('MultiheadAttention: a fully masked query gives NaN, as torch', async () => {
    const layer = new nn.MultiheadAttention(2, 1, CPU64);
    const x = randomTensor([2, 1, 2], 38);
    const [out] = layer.forward(x, x, x, { keyPaddingMask: fg.tensor([[true, true]], { device: 'cpu' }) });
    expect((await values(out)).every(Number.isNaN)).to.equal(true);
  });

  it('TransformerBlock: causal by default, bidirectional on request', async () => {
    const block = new nn.TransformerBlock(4, 2, CPU64);
    const x = randomTensor([1, 4, 4], 39);
    const changed = randomTensor([1, 4, 4], 39);
    fg.noGrad(() => changed.narrow(1, 3, 1).fill_(5));
    const causalA = await values(block.forward(x));
    const causalB = await values(block.forward(changed));
    // Changing the last position leaves earlier outputs unchanged under the causal mask.
    expectAllClose(causalB.slice(0, 12), causalA.slice(0, 12), 1e-12);
    const fullA = await values(block.forward(x, { isCausal: false }));
    const fullB = await values(block.forward(changed, { isCausal: false }));
    expect(Math.abs(fullA[0] - fullB[0])).to.be.above(1e-6);
    expect(() => block.forward(fg.zeros([2, 3], CPU64))).to.throw(/expected input of shape \[batch, seq, 4\] or \[seq, 4\], got \[2, 3\]/);
  });

  it('recurrent layers: clear errors', () => {
    const lstm = new nn.LSTM(3, 2, { ...CPU64, numLayers: 2 });
    expect(() => lstm.forward(fg.zeros([4, 2, 5], CPU64))).to.throw(/expected input of shape \[seq, batch, inputSize\] or \[seq, inputSize\] with inputSize 3, got \[4, 2, 5\]/);
    const x = fg.zeros([4, 2, 3], CPU64);
    expect(() => lstm.forward(x, [fg.zeros([1, 2, 2], CPU64), fg.zeros([2, 2, 2], CPU64)])).to.throw(/expected h0 of shape \[2, 2, 2\]/);
    expect(() => lstm.forward(x, [fg.zeros([2, 2, 2], CPU64)] as unknown as [fg.Tensor, fg.Tensor])).to.throw(/pair \[h0, c0\]/);
    expect(() => new nn.RNN(3, 2, { layerNorm: true } as fg.nn.RnnOptions)).to.throw(/layerNorm is available on LSTM and GRU only/);
    expect(() => new nn.RNN(3, 2, { nonlinearity: 'sigmoid' as 'tanh' })).to.throw(/nonlinearity must be 'tanh' or 'relu'/);
    expect(() => new nn.GRU(3, 0)).to.throw(/hiddenSize must be a positive integer, got 0/);
    expect(() => new nn.GRU(3, 2).forward(fg.zeros([0, 1, 3]))).to.throw(/sequence is empty/);
  });

  it('recurrent layers: dropout between layers only while training', async () => {
    const layer = new nn.GRU(2, 3, { ...CPU64, numLayers: 2, dropout: 0.9 });
    const x = randomTensor([3, 2, 2], 40);
    layer.eval();
    const a = await values(layer.forward(x)[0]);
    const b = await values(layer.forward(x)[0]);
    expect(a).to.deep.equal(b);
    layer.train();
    fg.manualSeed(5);
    const c = await values(layer.forward(x)[0]);
    expect(c).to.not.deep.equal(a);
  });

  it('recurrent layers: no graph under noGrad', () => {
    const layer = new nn.LSTM(2, 2, CPU64);
    const [out, [h, c]] = fg.noGrad(() => layer.forward(randomTensor([3, 1, 2], 41, { ...CPU64, requiresGrad: true })));
    for (const t of [out, h, c]) expect(t.requiresGrad).to.equal(false);
  });
});

// ---- gradient clipping ----

describe('nn.utils.clipGradNorm', () => {
  function withGrads(grads: number[][]): fg.Tensor[] {
    return grads.map((g) => {
      const p = fg.zeros([g.length], { ...CPU64, requiresGrad: true });
      p.grad = fg.tensor(g, CPU64);
      return p;
    });
  }

  it('scales gradients above maxNorm', async () => {
    const params = withGrads([[3, 0], [0, 4, 0]]);
    const total = nn.utils.clipGradNorm(params, 1);
    expect(total.shape).to.deep.equal([]);
    expect(await total.item()).to.be.closeTo(5, 1e-12);
    const scale = 1 / (5 + 1e-6);
    expectAllClose(await values(params[0].grad!), [3 * scale, 0], 1e-12);
    expectAllClose(await values(params[1].grad!), [0, 4 * scale, 0], 1e-12);
  });

  it('leaves small gradients and skips parameters without one', async () => {
    const params = withGrads([[0.3, -0.4]]);
    params.push(fg.zeros([2], { ...CPU64, requiresGrad: true }));
    expect(await nn.utils.clipGradNorm(params, 1).item()).to.be.closeTo(0.5, 1e-12);
    expectAllClose(await values(params[0].grad!), [0.3, -0.4], 0);
    expect(params[1].grad).to.equal(null);
  });

  it('infinity and 1-norms', async () => {
    expect(await nn.utils.clipGradNorm(withGrads([[1, -7], [2]]), 100, Infinity).item()).to.equal(7);
    expect(await nn.utils.clipGradNorm(withGrads([[1, -7], [2]]), 100, 1).item()).to.be.closeTo(10, 1e-12);
    expect(await nn.utils.clipGradNorm([], 1).item()).to.equal(0);
    expect(() => nn.utils.clipGradNorm(withGrads([[1]]), 1, 0)).to.throw(/normType must be a positive number or Infinity/);
  });

  it('clipGradValue clamps in place', async () => {
    const params = withGrads([[-3, 0.5, 2]]);
    nn.utils.clipGradValue(params, 1);
    expect(await values(params[0].grad!)).to.deep.equal([-1, 0.5, 1]);
  });

  it('clips a model after backward', async () => {
    const model = new nn.Linear(3, 2, CPU64);
    model.forward(randomTensor([4, 3], 42)).mul(100).sum().backward();
    const before = Math.hypot(...(await values(model.weight.grad!)), ...(await values(model.bias!.grad!)));
    const total = await nn.utils.clipGradNorm(model.parameters(), 0.5).item();
    expect(total).to.be.closeTo(before, 1e-9);
    const after = Math.hypot(...(await values(model.weight.grad!)), ...(await values(model.bias!.grad!)));
    expect(after).to.be.closeTo(0.5, 1e-6);
  });
});

// ---- memory: forward and backward release everything they do not return ----

describe('nn layers: no memory growth across training steps', () => {
  const devices: fg.DeviceName[] = ['cpu', 'webgpu'];
  for (const device of devices) {
    describe(device, function () {
      if (device === 'webgpu') {
        before(async function () {
          await requireWebGpu(this);
        });
      }
      const dtype = device === 'cpu' ? 'float64' : 'float32';
      const cases: [string, () => { module: fg.nn.Module; step: () => fg.Tensor[] }][] = [
        ['LSTM', () => {
          const m = new nn.LSTM(3, 4, { numLayers: 2, batchFirst: true, dtype, device });
          const x = fg.ones([2, 5, 3], { dtype, device });
          return { module: m, step: () => { const [o, [h, c]] = m.forward(x); return [o, h, c]; } };
        }],
        ['LSTM with layerNorm', () => {
          const m = new nn.LSTM(3, 4, { layerNorm: true, dtype, device });
          const x = fg.ones([5, 2, 3], { dtype, device });
          const h0 = fg.zeros([1, 2, 4], { dtype, device });
          return { module: m, step: () => { const [o, [h, c]] = m.forward(x, [h0, h0]); return [o, h, c]; } };
        }],
        ['GRU', () => {
          const m = new nn.GRU(3, 4, { numLayers: 2, dtype, device });
          const x = fg.ones([5, 2, 3], { dtype, device });
          const h0 = fg.zeros([2, 2, 4], { dtype, device });
          return { module: m, step: () => m.forward(x, h0) };
        }],
        ['GRU with layerNorm', () => {
          const m = new nn.GRU(3, 4, { layerNorm: true, dtype, device });
          const x = fg.ones([5, 2, 3], { dtype, device });
          return { module: m, step: () => m.forward(x) };
        }],
        ['RNN', () => {
          const m = new nn.RNN(3, 4, { numLayers: 2, dtype, device });
          const x = fg.ones([4, 3], { dtype, device });
          return { module: m, step: () => m.forward(x) };
        }],
        ['TransformerBlock', () => {
          const m = new nn.TransformerBlock(8, 2, { dtype, device });
          const x = fg.ones([2, 3, 8], { dtype, device });
          const keyPaddingMask = fg.zeros([2, 3], { dtype: 'bool', device });
          return { module: m, step: () => [m.forward(x, { keyPaddingMask })] };
        }],
        ['Embedding with paddingIdx', () => {
          const m = new nn.Embedding(5, 3, { paddingIdx: 0, dtype, device });
          const x = fg.tensor([0, 1, 2, 0], { dtype: 'int32', device });
          return { module: m, step: () => [m.forward(x)] };
        }],
      ];
      for (const [name, make] of cases) {
        it(name, async () => {
          const { module, step } = make();
          const train = () => {
            const outputs = step();
            const loss = fg.tidy(() => outputs.map((t) => t.sum()).reduce((a, b) => a.add(b)));
            loss.backward();
            loss.dispose();
            outputs.forEach((t) => t.dispose());
            nn.utils.clipGradNorm(module.parameters(), 1).dispose();
            module.zeroGrad();
          };
          train();
          await fg.synchronize();
          // Release what earlier tests dropped without dispose(). No collection runs after this point, so a
          // handle that the layers forget to dispose stays counted.
          await settleGarbage();
          const before = fg.memory(device).liveBytes;
          for (let i = 0; i < 3; i++) train();
          await fg.synchronize();
          expect(fg.memory(device).liveBytes).to.equal(before);
          fg.noGrad(() => step().forEach((t) => t.dispose()));
          expect(fg.memory(device).liveBytes).to.equal(before);
        });
      }
    });
  }
});
