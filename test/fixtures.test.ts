// Checks fusegrad against PyTorch 1.13 on the fixtures of scripts/make-fixtures.py: forward values and
// the gradients of sum(out * w), on the CPU backend in float64 and float32 and on WebGPU in float32.
//
// Tolerances (see Tolerance in helpers/fixtures.ts for how atol scales with the tensor):
//   float64: rtol 1e-9, atol 1e-9, which covers the 10 significant digits that the fixtures keep;
//   float32: rtol 1e-5, atol 1e-6.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { requireWebGpu } from './helpers/setup.js';
import { FixtureCase, FixtureInput, Tolerance, ViewStep, decodeNumber, decodeValues, expectClose, loadFixtures } from './helpers/fixtures.js';

const F = fg.nn.functional;

type Args = Record<string, unknown>;
type OpRunner = (inputs: fg.Tensor[], args: Args) => fg.Tensor;

/** Reduction dims as the fixtures store them: absent for all dims, a number or a list. */
function dims(args: Args): number | number[] | undefined {
  return args.dim as number | number[] | undefined;
}

function keepdim(args: Args): boolean {
  return (args.keepdim as boolean | undefined) ?? false;
}

/** Each fixture op, run the way a user would call it. */
const OPS: Record<string, OpRunner> = {
  add: ([a, b]) => a.add(b),
  sub: ([a, b]) => a.sub(b),
  mul: ([a, b]) => a.mul(b),
  div: ([a, b]) => a.div(b),
  pow: ([a, b], args) => (b ? a.pow(b) : a.pow(args.exponent as number)),
  maximum: ([a, b]) => a.maximum(b),
  minimum: ([a, b]) => a.minimum(b),
  matmul: ([a, b]) => a.matmul(b),
  sum: ([x], args) => x.sum(dims(args), keepdim(args)),
  mean: ([x], args) => x.mean(dims(args), keepdim(args)),
  amax: ([x], args) => x.amax(dims(args), keepdim(args)),
  amin: ([x], args) => x.amin(dims(args), keepdim(args)),
  var: ([x], args) => x.var(dims(args), { unbiased: args.unbiased as boolean, keepdim: keepdim(args) }),
  argmax: ([x], args) => x.argmax(args.dim as number | undefined, keepdim(args)),
  argmin: ([x], args) => x.argmin(args.dim as number | undefined, keepdim(args)),
  softmax: ([x], args) => F.softmax(x, args.dim as number),
  logSoftmax: ([x], args) => F.logSoftmax(x, args.dim as number),
  crossEntropy: ([x, target], args) => F.crossEntropy(x, target, args as fg.nn.functional.CrossEntropyOptions),
  gelu: ([x], args) => F.gelu(x, { approximate: args.approximate as 'none' | 'tanh' }),
  embedding: ([indices, weight]) => F.embedding(indices, weight),
  cat: (inputs, args) => fg.cat(inputs, args.dim as number),
  permute: ([x], args) => x.permute(args.dims as number[]),
  maskedFill: ([x, mask], args) => x.maskedFill(mask, decodeNumber(args.value as number)),
  maskedFillSoftmax: ([x, mask], args) => F.softmax(x.maskedFill(mask, decodeNumber(args.value as number)), args.dim as number),
};

function applyView(x: fg.Tensor, steps: readonly ViewStep[]): fg.Tensor {
  let out = x;
  for (const step of steps) {
    if (step[0] === 't') out = out.t();
    else if (step[0] === 'transpose') out = out.transpose(step[1], step[2]);
    else out = out.permute(step[1]);
  }
  return out;
}

function makeInput(spec: FixtureInput, dtype: fg.DType, device: fg.DeviceName): fg.Tensor {
  if (spec.dtype === 'bool') return fg.tensor(spec.values as boolean[], { shape: spec.shape, dtype: 'bool', device });
  const values = decodeValues(spec.values);
  if (spec.dtype === 'int32') return fg.tensor(values, { shape: spec.shape, dtype: 'int32', device });
  return fg.tensor(values, { shape: spec.shape, dtype, device, requiresGrad: spec.requiresGrad });
}

async function checkCase(c: FixtureCase, dtype: fg.DType, device: fg.DeviceName, tolerance: Tolerance): Promise<void> {
  const run = OPS[c.op];
  if (!run) throw new Error(`fixture op '${c.op}' has no runner; add it to OPS in test/fixtures.test.ts`);
  const leaves = c.inputs.map((spec) => makeInput(spec, dtype, device));
  const out = fg.tidy(() => run(leaves.map((t, i) => applyView(t, c.inputs[i].view)), c.args));

  expect(out.shape, 'output shape').to.deep.equal(c.output.shape);
  expect(out.dtype, 'output dtype').to.equal(c.output.dtype === 'float' ? dtype : 'int32');
  expectClose(await out.toArray(), decodeValues(c.output.values), tolerance, 'output');

  if (c.weight) {
    const weight = fg.tensor(decodeValues(c.weight), { shape: c.output.shape, dtype, device });
    fg.tidy(() => out.mul(weight).sum().backward());
    weight.dispose();
    for (const [i, expected] of c.grads.entries()) {
      const grad = leaves[i].grad;
      if (expected === null) {
        expect(grad, `input ${i} needs no gradient`).to.equal(null);
        continue;
      }
      expect(grad, `gradient of input ${i}`).to.not.equal(null);
      expectClose(await grad!.toArray(), decodeValues(expected), tolerance, `gradient of input ${i}`);
    }
  }
  for (const t of leaves) {
    t.grad?.dispose();
    t.dispose();
  }
  out.dispose();
}

const CONFIGS: { device: fg.DeviceName; dtype: fg.DType; tolerance: Tolerance }[] = [
  { device: 'cpu', dtype: 'float64', tolerance: { rtol: 1e-9, atol: 1e-9 } },
  { device: 'cpu', dtype: 'float32', tolerance: { rtol: 1e-5, atol: 1e-6 } },
  { device: 'webgpu', dtype: 'float32', tolerance: { rtol: 1e-5, atol: 1e-6 } },
];

/** Fixture groups that this file checks; a group whose ops need other runners gets its own test file. */
const GROUPS = ['core'];

for (const group of GROUPS) {
  const fixtures = loadFixtures(group);
  for (const { device, dtype, tolerance } of CONFIGS) {
    describe(`PyTorch ${fixtures.torch} fixtures '${group}' on ${device} in ${dtype}`, function () {
      if (device === 'webgpu') {
        before(async function () {
          await requireWebGpu(this);
        });
      }
      for (const c of fixtures.cases) {
        it(c.name, () => checkCase(c, dtype, device, tolerance));
      }
    });
  }
}
