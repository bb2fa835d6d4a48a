// Runs the nn fixtures of scripts/fixtures_nn.py: builds the fusegrad layer, loads torch's weights through
// loadStateDict under the camelCase names of fg.nn.utils.fromTorchName, and compares outputs and gradients.

import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import * as fg from '../../src/index.js';
import { EncodedNumber, Tolerance, decodeValues, expectClose } from './fixtures.js';

export interface NnInput {
  name: string;
  shape: number[];
  dtype: 'float' | 'int32' | 'bool';
  values: (EncodedNumber | boolean)[];
  requiresGrad: boolean;
}

export interface NnCase {
  name: string;
  module: string;
  args: number[];
  options: Record<string, unknown>;
  call: Record<string, unknown>;
  stateDict: Record<string, { shape: number[]; values: EncodedNumber[] }>;
  inputs: NnInput[];
  outputs: { name: string; shape: number[]; values: EncodedNumber[]; weight: EncodedNumber[] }[];
  grads: { inputs: Record<string, EncodedNumber[]>; params: Record<string, EncodedNumber[]> };
}

export interface NnFixtureFile {
  torch: string;
  cases: NnCase[];
}

export function loadNnFixtures(): NnFixtureFile {
  const url = new URL('../fixtures/nn.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as NnFixtureFile;
}

type Factory = { dtype: fg.DType; device: fg.DeviceName };

function build(c: NnCase, factory: Factory): fg.nn.Module {
  const options = { ...c.options, ...factory };
  const [a, b] = c.args;
  switch (c.module) {
    case 'Linear': return new fg.nn.Linear(a, b, options);
    case 'Embedding': return new fg.nn.Embedding(a, b, options);
    case 'MultiheadAttention': return new fg.nn.MultiheadAttention(a, b, options);
    case 'TransformerBlock': return new fg.nn.TransformerBlock(a, b, options);
    case 'RNN': return new fg.nn.RNN(a, b, options);
    case 'LSTM': return new fg.nn.LSTM(a, b, options);
    case 'GRU': return new fg.nn.GRU(a, b, options);
    default: throw new Error(`nn fixture module '${c.module}' has no builder in test/helpers/nn-fixtures.ts`);
  }
}

/** Calls the layer as a user would and returns its outputs in the fixture's order. */
function run(c: NnCase, module: fg.nn.Module, inputs: Map<string, fg.Tensor>): fg.Tensor[] {
  const input = inputs.get('input');
  switch (c.module) {
    case 'MultiheadAttention': {
      // A case with one 'input' is self-attention on one tensor, which takes the shared-projection path.
      const query = inputs.get('query') ?? input!;
      const key = inputs.get('key') ?? query;
      const value = inputs.get('value') ?? key;
      const [out, weights] = (module as fg.nn.MultiheadAttention).forward(query, key, value, {
        ...c.call, attnMask: inputs.get('attnMask'), keyPaddingMask: inputs.get('keyPaddingMask'),
      });
      return [out, weights!];
    }
    case 'LSTM': {
      const h0 = inputs.get('h0');
      const [out, [h, cell]] = (module as fg.nn.LSTM).forward(input!, h0 ? [h0, inputs.get('c0')!] : undefined);
      return [out, h, cell];
    }
    case 'RNN':
    case 'GRU': {
      const [out, h] = (module as fg.nn.GRU).forward(input!, inputs.get('h0'));
      return [out, h];
    }
    default:
      return [(module as fg.nn.Linear).forward(input!)];
  }
}

function makeInput(spec: NnInput, factory: Factory): fg.Tensor {
  const { device } = factory;
  if (spec.dtype === 'bool') return fg.tensor(spec.values as boolean[], { shape: spec.shape, dtype: 'bool', device });
  const values = decodeValues(spec.values);
  if (spec.dtype === 'int32') return fg.tensor(values, { shape: spec.shape, dtype: 'int32', device });
  return fg.tensor(values, { shape: spec.shape, dtype: factory.dtype, device, requiresGrad: spec.requiresGrad });
}

/** Checks one case: outputs, then the gradients of sum_k sum(out_k * w_k) for inputs and parameters. */
export async function checkNnCase(c: NnCase, factory: Factory, tolerance: Tolerance): Promise<void> {
  const module = build(c, factory);
  const state: fg.nn.StateDict = {};
  for (const [torchName, entry] of Object.entries(c.stateDict)) {
    state[fg.nn.utils.fromTorchName(torchName)] = fg.tensor(decodeValues(entry.values), { shape: entry.shape, ...factory });
  }
  const loaded = module.loadStateDict(state);
  expect(loaded.missingKeys, 'missing keys').to.deep.equal([]);
  expect(loaded.unexpectedKeys, 'unexpected keys').to.deep.equal([]);
  Object.values(state).forEach((t) => t.dispose());

  const inputs = new Map(c.inputs.map((spec) => [spec.name, makeInput(spec, factory)]));
  const outputs = run(c, module, inputs);
  expect(outputs.length, 'output count').to.equal(c.outputs.length);
  for (const [k, expected] of c.outputs.entries()) {
    expect(outputs[k].shape, `${expected.name} shape`).to.deep.equal(expected.shape);
    expect(outputs[k].dtype, `${expected.name} dtype`).to.equal(factory.dtype);
    expectClose(await outputs[k].toArray(), decodeValues(expected.values), tolerance, expected.name);
  }

  const loss = fg.tidy(() => {
    let total: fg.Tensor | null = null;
    for (const [k, expected] of c.outputs.entries()) {
      const weight = fg.tensor(decodeValues(expected.weight), { shape: expected.shape, ...factory });
      const term = outputs[k].mul(weight).sum();
      total = total ? total.add(term) : term;
    }
    return total!;
  });
  loss.backward();

  for (const spec of c.inputs) {
    const grad = inputs.get(spec.name)!.grad;
    const expected = c.grads.inputs[spec.name];
    if (!expected) {
      expect(grad, `${spec.name} needs no gradient`).to.equal(null);
      continue;
    }
    expect(grad, `gradient of ${spec.name}`).to.not.equal(null);
    expectClose(await grad!.toArray(), decodeValues(expected), tolerance, `gradient of ${spec.name}`);
  }
  const params = new Map(module.namedParameters());
  expect([...params.keys()].sort(), 'parameter names').to.deep.equal(Object.keys(c.grads.params).map(fg.nn.utils.fromTorchName).sort());
  for (const [torchName, expected] of Object.entries(c.grads.params)) {
    const name = fg.nn.utils.fromTorchName(torchName);
    const grad = params.get(name)!.grad;
    expect(grad, `gradient of ${name}`).to.not.equal(null);
    expectClose(await grad!.toArray(), decodeValues(expected), tolerance, `gradient of ${name} (torch ${torchName})`);
  }

  loss.dispose();
  outputs.forEach((t) => t.dispose());
  for (const t of inputs.values()) {
    t.grad?.dispose();
    t.dispose();
  }
  module.zeroGrad();
  module.parameters().forEach((p) => p.dispose());
}
