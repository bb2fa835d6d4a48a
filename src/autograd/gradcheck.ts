// gradcheck: compares analytic gradients from backward() with central finite differences.

import { getBackend, noGrad } from '../runtime.js';
import { formatShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { isTensor } from '../tensor/tensor.js';

export interface GradcheckOptions {
  /** Step of the central difference. */
  eps?: number;
  atol?: number;
  rtol?: number;
}

/**
 * Default tolerances by input dtype. float64 (the CPU backend) is tight. In float32, as on WebGPU, a
 * central difference loses about half the digits to cancellation, so the step and tolerances are far looser.
 */
export const GRADCHECK_DEFAULTS: Record<'float64' | 'float32', Required<GradcheckOptions>> = {
  float64: { eps: 1e-6, atol: 1e-5, rtol: 1e-3 },
  float32: { eps: 1e-2, atol: 1e-2, rtol: 1e-2 },
};

export interface GradcheckFailure {
  input: number;
  index: number;
  analytic: number;
  numeric: number;
}

export interface GradcheckResult {
  ok: boolean;
  /** The element with the largest error relative to its tolerance. */
  worst: GradcheckFailure | null;
}

/**
 * Checks d(sum(fn(inputs) * w))/d(input) for every input that requires grad, where w is a fixed random
 * weighting so that every output element counts. Inputs must be leaves; their data is restored afterwards.
 * Defaults come from GRADCHECK_DEFAULTS by the dtype of the inputs (float64, or anything else as float32).
 * Throws with the worst element (index, analytic, numeric) when a gradient is off; returns the result otherwise.
 */
export async function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): Promise<GradcheckResult> {
  const defaults = GRADCHECK_DEFAULTS[inputs.every((t) => t.dtype === 'float64' || !t.requiresGrad) ? 'float64' : 'float32'];
  const eps = options.eps ?? defaults.eps;
  const atol = options.atol ?? defaults.atol;
  const rtol = options.rtol ?? defaults.rtol;
  const checked = inputs.map((t, i) => ({ t, i })).filter(({ t }) => t.requiresGrad);
  if (checked.length === 0) throw new Error('gradcheck: no input requires grad; create them with { requiresGrad: true }');
  for (const { t, i } of checked) {
    if (!t.isLeaf) throw new Error(`gradcheck: input ${i} is not a leaf; pass tensors created directly with requiresGrad`);
  }

  // A fixed weighting of the outputs turns any output shape into a scalar.
  const probe = noGrad(() => fn(...inputs));
  const weights = await probe.toArray();
  const weightData = Array.from(weights, (_, k) => Math.sin(k * 1.7 + 0.3) + 1.25);
  const weight = Tensor.fromStorage(getBackend(probe.device).upload(probe.dtype, Float64Array.from(weightData)), probe.shape);
  probe.dispose();
  const scalar = (...xs: Tensor[]) => tidy(() => fn(...xs).mul(weight).sum(), isTensor);

  for (const { t } of checked) t.grad = null;
  const loss = scalar(...inputs);
  loss.backward();
  loss.dispose();

  let worst: (GradcheckFailure & { ratio: number }) | null = null;
  for (const { t, i } of checked) {
    const analytic = t.grad ? await t.grad.toArray() : new Float64Array(t.numel);
    const original = await t.toArray();
    const data = Float64Array.from(original);
    for (let k = 0; k < t.numel; k++) {
      const value = async (x: number) => {
        data[k] = x;
        writeInto(t, data);
        const out = noGrad(() => scalar(...inputs));
        const v = await out.item();
        out.dispose();
        return v;
      };
      const plus = await value(original[k] + eps);
      const minus = await value(original[k] - eps);
      data[k] = original[k];
      const numeric = (plus - minus) / (2 * eps);
      const error = Math.abs(analytic[k] - numeric);
      const ratio = error / (atol + rtol * Math.abs(numeric));
      if (!worst || ratio > worst.ratio || Number.isNaN(ratio)) {
        worst = { input: i, index: k, analytic: analytic[k], numeric, ratio: Number.isNaN(ratio) ? Infinity : ratio };
      }
    }
    writeInto(t, data);
  }
  weight.dispose();
  const ok = worst === null || worst.ratio <= 1;
  const result = { ok, worst: worst && { input: worst.input, index: worst.index, analytic: worst.analytic, numeric: worst.numeric } };
  if (!ok && worst) {
    const t = inputs[worst.input];
    throw new Error(
      `gradcheck: gradient of input ${worst.input} (shape ${formatShape(t.shape)}) is off at flat index ${worst.index}: ` +
        `analytic ${worst.analytic}, numeric ${worst.numeric} (eps ${eps}, atol ${atol}, rtol ${rtol})`,
    );
  }
  return result;
}

function writeInto(t: Tensor, data: Float64Array): void {
  noGrad(() => {
    const src = Tensor.fromStorage(getBackend(t.device).upload(t.dtype, data), t.shape);
    t.copy_(src);
    src.dispose();
  });
}
