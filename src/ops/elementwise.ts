// Elementwise ops: each kernel is one line of WGSL and one of JavaScript (the table below), and each
// op's chain rule sits right after its forward. Operands broadcast with NumPy's rules and may be plain numbers.

import erf from '@stdlib/math-base-special-erf';
import type { MapKernel } from '../backends/backend.js';
import { getBackend } from '../runtime.js';
import { DType, isFloating, promoteTypes, promoteWithScalar } from '../tensor/dtype.js';
import { Tensor, TensorOrScalar } from '../tensor/tensor.js';
import { arg, registerOp } from './registry.js';
import { broadcastView, checkDTypeOnDevice, checkTensor, commonDevice, empty, outputShape, sumTo } from './util.js';

const SQRT1_2 = Math.SQRT1_2;
const GELU_K = Math.sqrt(2 / Math.PI);

function sigmoidJs(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function geluTanhGrad(x: number): number {
  const u = GELU_K * (x + 0.044715 * x ** 3);
  const t = Math.tanh(u);
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * x * x);
}

function kernel(name: string, arity: number, wgsl: string, js: MapKernel['js'], extra: Partial<MapKernel> = {}): MapKernel {
  return { name, arity, wgsl, js, ...extra };
}

/** The elementwise kernels. `T(...)` in WGSL stands for the compute type. */
export const K = {
  identity: kernel('identity', 1, 'a', (a) => a),
  toBool: kernel('toBool', 1, 'a != T(0)', (a) => a !== 0, { predicate: true }),
  fill: kernel('fill', 0, 'p0', (_a, _b, _c, p) => p[0]),
  neg: kernel('neg', 1, '-a', (a) => -a),
  exp: kernel('exp', 1, 'exp(a)', Math.exp),
  log: kernel('log', 1, 'log(a)', Math.log),
  sqrt: kernel('sqrt', 1, 'sqrt(a)', Math.sqrt),
  rsqrt: kernel('rsqrt', 1, 'inverseSqrt(a)', (a) => 1 / Math.sqrt(a)),
  abs: kernel('abs', 1, 'abs(a)', Math.abs),
  sign: kernel('sign', 1, 'sign(a)', Math.sign),
  tanh: kernel('tanh', 1, 'tanh_f32(a)', Math.tanh, { helpers: ['tanh'] }),
  sigmoid: kernel('sigmoid', 1, 'sigmoid_f32(a)', sigmoidJs, { helpers: ['sigmoid'] }),
  relu: kernel('relu', 1, 'max(a, T(0))', (a) => (a > 0 ? a : 0)),
  gelu: kernel('gelu', 1, 'a * 0.5 * (1.0 + erf_f32(a * 0.70710678118654752))', (a) => a * 0.5 * (1 + erf(a * SQRT1_2)), { helpers: ['erf'] }),
  geluTanh: kernel('geluTanh', 1, '0.5 * a * (1.0 + tanh_f32(0.7978845608028654 * (a + 0.044715 * a * a * a)))',
    (a) => 0.5 * a * (1 + Math.tanh(GELU_K * (a + 0.044715 * a ** 3))), { helpers: ['tanh'] }),
  logicalNot: kernel('logicalNot', 1, 'a == T(0)', (a) => a === 0, { predicate: true }),

  add: kernel('add', 2, 'a + b', (a, b) => a + b),
  addScaled: kernel('addScaled', 2, 'a + p0 * b', (a, b, _c, p) => a + p[0] * b),
  sub: kernel('sub', 2, 'a - b', (a, b) => a - b),
  mul: kernel('mul', 2, 'a * b', (a, b) => a * b),
  div: kernel('div', 2, 'a / b', (a, b) => a / b),
  pow: kernel('pow', 2, 'pow_f32(a, b)', (a, b) => a ** b, { helpers: ['pow'] }),
  maximum: kernel('maximum', 2, 'max(a, b)', (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b))),
  minimum: kernel('minimum', 2, 'min(a, b)', (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b))),
  eq: kernel('eq', 2, 'a == b', (a, b) => a === b, { predicate: true }),
  ne: kernel('ne', 2, 'a != b', (a, b) => a !== b, { predicate: true }),
  lt: kernel('lt', 2, 'a < b', (a, b) => a < b, { predicate: true }),
  le: kernel('le', 2, 'a <= b', (a, b) => a <= b, { predicate: true }),
  gt: kernel('gt', 2, 'a > b', (a, b) => a > b, { predicate: true }),
  ge: kernel('ge', 2, 'a >= b', (a, b) => a >= b, { predicate: true }),
  where: kernel('where', 3, 'select(c, b, a != T(0))', (a, b, c) => (a !== 0 ? b : c)),
  maskedFill: kernel('maskedFill', 2, 'select(a, p0, b != T(0))', (a, b, _c, p) => (b !== 0 ? p[0] : a)),
  clamp: kernel('clamp', 1, 'min(max(a, p0), p1)', (a, _b, _c, p) => Math.min(Math.max(a, p[0]), p[1])),

  // Fused backward kernels: one dispatch each instead of a chain of small ops.
  tanhBackward: kernel('tanhBackward', 2, 'a * (1.0 - b * b)', (g, y) => g * (1 - y * y)),
  sigmoidBackward: kernel('sigmoidBackward', 2, 'a * b * (1.0 - b)', (g, y) => g * y * (1 - y)),
  reluBackward: kernel('reluBackward', 2, 'select(T(0), a, b > T(0))', (g, y) => (y > 0 ? g : 0)),
  geluBackward: kernel('geluBackward', 2,
    'a * (0.5 * (1.0 + erf_f32(b * 0.70710678118654752)) + b * 0.3989422804014327 * exp(-0.5 * b * b))',
    (g, x) => g * (0.5 * (1 + erf(x * SQRT1_2)) + x * 0.3989422804014327 * Math.exp(-0.5 * x * x)), { helpers: ['erf'] }),
  geluTanhBackward: kernel('geluTanhBackward', 2,
    'a * (0.5 * (1.0 + tanh_f32(0.7978845608028654 * (b + 0.044715 * b * b * b))) + 0.5 * b * (1.0 - tanh_f32(0.7978845608028654 * (b + 0.044715 * b * b * b)) * tanh_f32(0.7978845608028654 * (b + 0.044715 * b * b * b))) * 0.7978845608028654 * (1.0 + 0.134145 * b * b))',
    (g, x) => g * geluTanhGrad(x), { helpers: ['tanh'] }),
  divBackwardB: kernel('divBackwardB', 3, '-a * b / (c * c)', (g, a, b) => (-g * a) / (b * b)),
  powBackwardBase: kernel('powBackwardBase', 3, 'a * c * pow_f32(b, c - 1.0)', (g, x, e) => g * e * x ** (e - 1), { helpers: ['pow'] }),
  maxBackward: kernel('maxBackward', 3, 'select(select(T(0), a, b > c), a * 0.5, b == c)', (g, a, b) => (a === b ? g / 2 : a > b ? g : 0)),
  minBackward: kernel('minBackward', 3, 'select(select(T(0), a, b < c), a * 0.5, b == c)', (g, a, b) => (a === b ? g / 2 : a < b ? g : 0)),
  clampBackward: kernel('clampBackward', 2, 'select(T(0), a, b >= p0 && b <= p1)', (g, x, _c, p) => (x >= p[0] && x <= p[1] ? g : 0)),
} satisfies Record<string, MapKernel>;

export interface MapOptions {
  /** The dtype the kernel computes in; by default the promoted dtype of the operands. */
  compute?: DType;
  /** The output dtype; by default the compute dtype (bool for predicates). */
  out?: DType;
  params?: number[];
  /** Promote integer operands to float32 (for ops like div and exp). */
  floating?: boolean;
}

/** Promotes the dtypes of tensor and number operands, as torch.result_type does. */
export function resultType(operands: readonly TensorOrScalar[]): DType {
  const tensors = operands.filter((v): v is Tensor => v instanceof Tensor);
  let dtype = tensors.map((t) => t.dtype).reduce(promoteTypes);
  for (const v of operands) if (typeof v === 'number' || typeof v === 'boolean') dtype = promoteWithScalar(dtype, v);
  return dtype;
}

/** Runs one elementwise kernel over broadcast operands into a new contiguous tensor. Records nothing. */
export function mapOp(op: string, k: MapKernel, operands: readonly TensorOrScalar[], options: MapOptions = {}): Tensor {
  operands.forEach((v, i) => {
    if (!(v instanceof Tensor) && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new TypeError(`${op}: operand ${i} must be a Tensor or a number, got ${v === null ? 'null' : typeof v}`);
    }
  });
  const device = commonDevice(op, operands);
  let compute = options.compute ?? resultType(operands);
  if (options.floating && !isFloating(compute)) compute = 'float32';
  const outDType = options.out ?? (k.predicate ? 'bool' : compute);
  checkDTypeOnDevice(op, compute, device);
  const shape = outputShape(op, operands);
  const out = empty(shape, outDType, device);
  const inputs = operands.map((v) => (v instanceof Tensor ? broadcastView(op, v, shape) : Number(v)));
  getBackend(device).map(k, inputs, compute, out.asView(op), options.params ?? []);
  return out;
}

function shapeOf(v: TensorOrScalar): readonly number[] | null {
  return v instanceof Tensor ? v.shape : null;
}

/** Reduces a gradient to an operand's shape, or returns null for a number operand. */
function gradFor(v: TensorOrScalar, g: Tensor): Tensor | null {
  const shape = shapeOf(v);
  return shape ? sumTo(g, shape) : null;
}

// ---- unary ----

function unaryFloat(op: string, k: MapKernel, x: Tensor): Tensor {
  checkTensor(op, x);
  return mapOp(op, k, [x], { floating: true });
}

export function neg(x: Tensor): Tensor {
  const out = mapOp('neg', K.neg, [checkTensor('neg', x)]);
  return Tensor.record('neg', [x], out, (g) => [mapOp('neg', K.neg, [g])]);
}

export function exp(x: Tensor): Tensor {
  const y = unaryFloat('exp', K.exp, x);
  return Tensor.record('exp', [x], y, (g, [out]) => [g.mul(out)], [y]);
}

export function log(x: Tensor): Tensor {
  const y = unaryFloat('log', K.log, x);
  return Tensor.record('log', [x], y, (g, [input]) => [g.div(input)], [x]);
}

export function sqrt(x: Tensor): Tensor {
  const y = unaryFloat('sqrt', K.sqrt, x);
  return Tensor.record('sqrt', [x], y, (g, [out]) => [mapOp('sqrt', K.div, [g, out]).mul_(0.5)], [y]);
}

export function rsqrt(x: Tensor): Tensor {
  const y = unaryFloat('rsqrt', K.rsqrt, x);
  // d/dx x^(-1/2) = -0.5 x^(-3/2) = -0.5 y^3
  return Tensor.record('rsqrt', [x], y, (g, [out]) => [mapOp('rsqrt', K.mul, [g, out.pow(3)]).mul_(-0.5)], [y]);
}

export function abs(x: Tensor): Tensor {
  const y = mapOp('abs', K.abs, [checkTensor('abs', x)]);
  return Tensor.record('abs', [x], y, (g, [input]) => [g.mul(mapOp('abs', K.sign, [input]))], [x]);
}

export function tanh(x: Tensor): Tensor {
  const y = unaryFloat('tanh', K.tanh, x);
  return Tensor.record('tanh', [x], y, (g, [out]) => [mapOp('tanh', K.tanhBackward, [g, out])], [y]);
}

export function sigmoid(x: Tensor): Tensor {
  const y = unaryFloat('sigmoid', K.sigmoid, x);
  return Tensor.record('sigmoid', [x], y, (g, [out]) => [mapOp('sigmoid', K.sigmoidBackward, [g, out])], [y]);
}

export function relu(x: Tensor): Tensor {
  const y = mapOp('relu', K.relu, [checkTensor('relu', x)]);
  return Tensor.record('relu', [x], y, (g, [out]) => [mapOp('relu', K.reluBackward, [g, out])], [y]);
}

/** GELU: x * Phi(x) exactly, or with `approximate: 'tanh'` the tanh form of Hendrycks and Gimpel (2016). */
export function gelu(x: Tensor, options: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  const approximate = options.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') {
    throw new TypeError(`gelu: approximate must be 'none' or 'tanh', got ${JSON.stringify(approximate)}`);
  }
  const tanhForm = approximate === 'tanh';
  const y = unaryFloat('gelu', tanhForm ? K.geluTanh : K.gelu, x);
  const backward = tanhForm ? K.geluTanhBackward : K.geluBackward;
  return Tensor.record('gelu', [x], y, (g, [input]) => [mapOp('gelu', backward, [g, input])], [x]);
}

export function logicalNot(x: Tensor): Tensor {
  return mapOp('logicalNot', K.logicalNot, [checkTensor('logicalNot', x)]);
}

export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  checkTensor('clamp', x);
  if ((min === undefined || min === null) && (max === undefined || max === null)) {
    throw new TypeError('clamp: at least one of min and max must be a number');
  }
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  if (lo > hi) throw new RangeError(`clamp: min ${lo} is greater than max ${hi}`);
  const params = [lo, hi];
  const y = mapOp('clamp', K.clamp, [x], { params });
  return Tensor.record('clamp', [x], y, (g, [input]) => [mapOp('clamp', K.clampBackward, [g, input], { params })], [x]);
}

// ---- binary ----

export function add(a: TensorOrScalar, b: TensorOrScalar, alpha = 1): Tensor {
  const y = alpha === 1 ? mapOp('add', K.add, [a, b]) : mapOp('add', K.addScaled, [a, b], { params: [alpha] });
  return Tensor.record('add', [a, b], y, (g) => [gradFor(a, g), b instanceof Tensor ? scaled(gradFor(b, g)!, alpha) : null]);
}

export function sub(a: TensorOrScalar, b: TensorOrScalar, alpha = 1): Tensor {
  const y = alpha === 1 ? mapOp('sub', K.sub, [a, b]) : mapOp('sub', K.addScaled, [a, b], { params: [-alpha] });
  return Tensor.record('sub', [a, b], y, (g) => [gradFor(a, g), b instanceof Tensor ? scaled(gradFor(b, g)!, -alpha) : null]);
}

function scaled(g: Tensor, factor: number): Tensor {
  if (factor === 1) return g;
  const out = g.mul(factor);
  g.dispose();
  return out;
}

export function mul(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  const y = mapOp('mul', K.mul, [a, b]);
  const saved = [a, b].filter((v): v is Tensor => v instanceof Tensor);
  return Tensor.record('mul', [a, b], y, (g, s) => {
    const [sa, sb] = a instanceof Tensor ? [s[0], b instanceof Tensor ? s[1] : b] : [a, s[0]];
    return [
      a instanceof Tensor && a.requiresGrad ? reduced(mapOp('mul', K.mul, [g, sb]), a.shape) : null,
      b instanceof Tensor && b.requiresGrad ? reduced(mapOp('mul', K.mul, [g, sa]), b.shape) : null,
    ];
  }, saved);
}

export function div(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  const y = mapOp('div', K.div, [a, b], { floating: true });
  const saved = [a, b].filter((v): v is Tensor => v instanceof Tensor);
  return Tensor.record('div', [a, b], y, (g, s) => {
    const [sa, sb] = a instanceof Tensor ? [s[0], b instanceof Tensor ? s[1] : b] : [a, s[0]];
    return [
      a instanceof Tensor && a.requiresGrad ? reduced(mapOp('div', K.div, [g, sb]), a.shape) : null,
      b instanceof Tensor && b.requiresGrad ? reduced(mapOp('div', K.divBackwardB, [g, sa, sb]), b.shape) : null,
    ];
  }, saved);
}

export function pow(a: Tensor, exponent: TensorOrScalar): Tensor {
  checkTensor('pow', a);
  const y = mapOp('pow', K.pow, [a, exponent], { floating: true });
  const saved = exponent instanceof Tensor ? [a, exponent, y] : [a];
  return Tensor.record('pow', [a, exponent], y, (g, s) => {
    const e = exponent instanceof Tensor ? s[1] : exponent;
    const gradA = a.requiresGrad ? reduced(mapOp('pow', K.powBackwardBase, [g, s[0], e]), a.shape) : null;
    let gradE: Tensor | null = null;
    if (exponent instanceof Tensor && exponent.requiresGrad) {
      // d/de a^e = a^e log(a)
      const logA = s[0].log();
      const prod = mapOp('pow', K.mul, [g, s[2]]);
      gradE = reduced(prod.mul(logA), exponent.shape);
      logA.dispose();
      prod.dispose();
    }
    return [gradA, gradE];
  }, saved);
}

/** Sums a new gradient to a shape and releases the unreduced one. */
function reduced(g: Tensor, shape: readonly number[]): Tensor {
  const out = sumTo(g, shape);
  g.dispose();
  return out;
}

function extremum(op: 'maximum' | 'minimum', a: TensorOrScalar, b: TensorOrScalar): Tensor {
  const y = mapOp(op, op === 'maximum' ? K.maximum : K.minimum, [a, b]);
  const backward = op === 'maximum' ? K.maxBackward : K.minBackward;
  const saved = [a, b].filter((v): v is Tensor => v instanceof Tensor);
  return Tensor.record(op, [a, b], y, (g, s) => {
    const [sa, sb] = a instanceof Tensor ? [s[0], b instanceof Tensor ? s[1] : b] : [a, s[0]];
    return [
      a instanceof Tensor && a.requiresGrad ? reduced(mapOp(op, backward, [g, sa, sb]), a.shape) : null,
      b instanceof Tensor && b.requiresGrad ? reduced(mapOp(op, backward, [g, sb, sa]), b.shape) : null,
    ];
  }, saved);
}

export function maximum(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  return extremum('maximum', a, b);
}

export function minimum(a: TensorOrScalar, b: TensorOrScalar): Tensor {
  return extremum('minimum', a, b);
}

// ---- comparisons (no gradient) ----

function compare(op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', a: TensorOrScalar, b: TensorOrScalar): Tensor {
  return mapOp(op, K[op], [a, b]);
}

export const eq = (a: TensorOrScalar, b: TensorOrScalar): Tensor => compare('eq', a, b);
export const ne = (a: TensorOrScalar, b: TensorOrScalar): Tensor => compare('ne', a, b);
export const lt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => compare('lt', a, b);
export const le = (a: TensorOrScalar, b: TensorOrScalar): Tensor => compare('le', a, b);
export const gt = (a: TensorOrScalar, b: TensorOrScalar): Tensor => compare('gt', a, b);
export const ge = (a: TensorOrScalar, b: TensorOrScalar): Tensor => compare('ge', a, b);

// ---- selection ----

function checkMask(op: string, mask: Tensor): void {
  checkTensor(op, mask, 'mask');
  if (mask.dtype !== 'bool') {
    throw new TypeError(`${op}: the condition must be a bool tensor, got ${mask.dtype}; build it with a comparison such as x.gt(0)`);
  }
}

/** where(condition, a, b): a where condition is true, b elsewhere, as torch.where. */
export function where(condition: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  checkMask('where', condition);
  const compute = [a, b].some((v) => v instanceof Tensor) ? resultType([a, b]) : 'float32';
  const y = mapOp('where', K.where, [condition, a, b], { compute });
  return Tensor.record('where', [a, b], y, (g, [cond]) => [
    a instanceof Tensor && a.requiresGrad ? reduced(mapOp('where', K.where, [cond, g, 0], { compute: g.dtype }), a.shape) : null,
    b instanceof Tensor && b.requiresGrad ? reduced(mapOp('where', K.where, [cond, 0, g], { compute: g.dtype }), b.shape) : null,
  ], [condition]);
}

/** Returns x with `value` wherever mask is true; the mask broadcasts to x's shape. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  checkTensor('maskedFill', x);
  checkMask('maskedFill', mask);
  if (typeof value !== 'number' && typeof value !== 'boolean') {
    throw new TypeError(`maskedFill: value must be a number, got ${typeof value}`);
  }
  const shape = outputShape('maskedFill', [x, mask]);
  if (shape.length !== x.shape.length || shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`maskedFill: mask of shape [${mask.shape.join(', ')}] must broadcast to the input's shape [${x.shape.join(', ')}]`);
  }
  const y = mapOp('maskedFill', K.maskedFill, [x, mask], { params: [Number(value)], compute: x.dtype });
  return Tensor.record('maskedFill', [x], y, (g, [m]) => [mapOp('maskedFill', K.maskedFill, [g, m], { params: [0] })], [mask]);
}

// ---- samples for the registry ----

const unarySamples = (kind: 'normal' | 'positive' | 'awayFromZero', run: (x: Tensor) => Tensor) => [
  { label: 'matrix', args: [arg([3, 5], kind)], run },
  { label: 'larger than a workgroup', args: [arg([2, 300], kind)], run },
  { label: 'transposed view', args: [arg([4, 7], kind)], run: (x: Tensor) => run(x.t()) },
  { label: 'scalar', args: [arg([], kind)], run },
];

registerOp('neg', unarySamples('normal', (x) => x.neg()));
registerOp('exp', unarySamples('normal', (x) => x.exp()));
registerOp('log', unarySamples('positive', (x) => x.log()));
registerOp('sqrt', unarySamples('positive', (x) => x.sqrt()));
registerOp('rsqrt', unarySamples('positive', (x) => x.rsqrt()));
registerOp('abs', unarySamples('awayFromZero', (x) => x.abs()));
registerOp('tanh', unarySamples('normal', (x) => x.tanh()));
registerOp('sigmoid', unarySamples('normal', (x) => x.sigmoid()));
registerOp('relu', unarySamples('awayFromZero', (x) => x.relu()));
registerOp('gelu', [
  ...unarySamples('normal', (x) => gelu(x)),
  { label: 'tanh form', args: [arg([5, 33])], run: (x) => gelu(x, { approximate: 'tanh' }) },
]);
registerOp('clamp', [
  { label: 'both bounds', args: [arg([4, 65], 'awayFromZero')], run: (x) => x.clamp(-0.5, 0.5) },
  { label: 'min only', args: [arg([17], 'awayFromZero')], run: (x) => x.clamp(0.25) },
]);

const binarySamples = (run: (a: Tensor, b: Tensor) => Tensor, kindB: 'normal' | 'positive' | 'awayFromZero' = 'normal') => [
  { label: 'same shape', args: [arg([3, 4]), arg([3, 4], kindB)], run },
  { label: 'broadcast row and column', args: [arg([4, 1]), arg([1, 5], kindB)], run },
  { label: 'broadcast leading dims', args: [arg([2, 3, 5]), arg([5], kindB)], run },
  { label: 'larger than a workgroup', args: [arg([3, 129]), arg([3, 129], kindB)], run },
  { label: 'transposed operand', args: [arg([5, 3]), arg([3, 5], kindB)], run: (a: Tensor, b: Tensor) => run(a.t(), b) },
];

registerOp('add', [
  ...binarySamples((a, b) => a.add(b)),
  { label: 'number and alpha', args: [arg([6]), arg([6])], run: (a, b) => a.add(2.5).add(b, -3) },
  // WebGPU runs contiguous float32 maps four elements per invocation when the count and offsets allow.
  { label: 'vec4 path past a workgroup, offset view', args: [arg([4, 400]), arg([3, 400])], run: (a, b) => a.narrow(0, 1, 3).add(b) },
]);
registerOp('sub', [...binarySamples((a, b) => a.sub(b)), { label: 'number', args: [arg([6])], run: (a) => sub(1, a) }]);
registerOp('mul', [
  ...binarySamples((a, b) => a.mul(b)),
  { label: 'number', args: [arg([2, 3])], run: (a) => a.mul(-1.5) },
  { label: 'number on the vec4 path', args: [arg([2, 6])], run: (a) => a.mul(-1.5) },
]);
registerOp('div', [...binarySamples((a, b) => a.div(b), 'awayFromZero'), { label: 'number over tensor', args: [arg([7], 'awayFromZero')], run: (a) => div(2, a) }]);
registerOp('pow', [
  { label: 'integer exponent of negative base', args: [arg([3, 4])], run: (a) => a.pow(3) },
  { label: 'fractional exponent', args: [arg([9], 'positive')], run: (a) => a.pow(1.5) },
  { label: 'tensor exponent', args: [arg([2, 5], 'positive'), arg([1, 5])], run: (a, e) => a.pow(e) },
]);
registerOp('maximum', [...binarySamples((a, b) => a.maximum(b)), { label: 'number', args: [arg([8])], run: (a) => a.maximum(0.1) }]);
registerOp('minimum', [...binarySamples((a, b) => a.minimum(b)), { label: 'number', args: [arg([8])], run: (a) => a.minimum(0.1) }]);
registerOp('where', [
  { label: 'broadcast condition', args: [arg([3, 1], 'bool'), arg([3, 4]), arg([4])], run: (c, a, b) => where(c, a, b) },
  { label: 'number branch', args: [arg([50], 'bool'), arg([50])], run: (c, a) => where(c, a, 0) },
]);
registerOp('maskedFill', [
  { label: 'broadcast mask', args: [arg([3, 6]), arg([1, 6], 'bool')], run: (x, m) => x.maskedFill(m, 2) },
  { label: 'full mask', args: [arg([4, 70]), arg([4, 70], 'bool')], run: (x, m) => x.maskedFill(m, -1) },
]);
const comparisonSamples = (run: (a: Tensor, b: Tensor) => Tensor) => [
  { label: 'broadcast', args: [arg([3, 4], 'distinct'), arg([4], 'distinct')], run },
  { label: 'with itself', args: [arg([2, 130], 'distinct')], run: (a: Tensor) => run(a, a) },
];
for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
  registerOp(op, comparisonSamples((a, b) => compare(op, a, b)), false);
}
