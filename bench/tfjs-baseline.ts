// The TensorFlow.js baseline: TensorFlow.js 4.22 with its WebGPU backend on the same Dawn adapter as fusegrad,
// running the same workloads, including a GPT written in tfjs ops with the architecture of the example GPT.

import type * as TF from '@tensorflow/tfjs';
import { quietly } from '../src/backends/webgpu/quiet-wait.js';
import type { ModelShape } from './models.js';

type Tf = typeof TF;

export interface TfjsBaseline {
  tf: Tf;
  /** Submits tfjs's pending commands and waits until the GPU queue is idle. */
  sync(): Promise<void>;
}

/** The parts of tfjs's WebGPUBackend (4.22) that a full synchronization needs; its own reads do the same. */
interface WebGpuBackendInternals {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/**
 * Loads tfjs-core and its WebGPU backend. navigator.gpu must already be set (bench/index.ts sets it from
 * the webgpu package). Returns null, with the reason, where either package or the backend is missing.
 */
export async function loadTfjs(): Promise<{ baseline: TfjsBaseline | null; reason: string }> {
  let tf: Tf;
  try {
    // The umbrella package, because tfjs-core's Node build registers no gradients (the umbrella does).
    tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (error) {
    return { baseline: null, reason: `TensorFlow.js is not installed (${(error as Error).message}); run npm ci` };
  }
  if (!(await tf.setBackend('webgpu'))) return { baseline: null, reason: 'the tfjs WebGPU backend failed to initialize' };
  await tf.ready();
  // By default tfjs computes ops on small host-resident tensors on its CPU backend. Every op here must
  // run on the adapter, as fusegrad's do.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const backend = tf.backend() as unknown as WebGpuBackendInternals;
  const sync = async () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    // The same wait as fusegrad.synchronize(): the webgpu package's polling slowed, so that neither side
    // spends a CPU core on it (see src/backends/webgpu/quiet-wait.ts).
    await quietly(backend.device.queue.onSubmittedWorkDone());
  };
  return { baseline: { tf, sync }, reason: '' };
}

/** LayerNorm over the last dim written with tfjs ops, as tfjs-layers' LayerNormalization computes it. */
export function tfLayerNorm(tf: Tf, x: TF.Tensor, weight: TF.Tensor, bias: TF.Tensor, eps = 1e-5): TF.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight), bias);
  });
}

/** GELU with erf, as torch.nn.GELU() and fusegrad's gelu compute it. */
function gelu(tf: Tf, x: TF.Tensor): TF.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * Builds bench/models.ts's Gpt in tfjs ops: token and position embeddings, pre-LN blocks of causal
 * multi-head attention and a GELU MLP of width 4 * dim, a final LayerNorm and a linear head. Returns one
 * training step on a fixed batch. tf.train has no AdamW, so it uses Adam with the same betas, which skips
 * one multiply per parameter.
 */
export function tfjsGptStep(tf: Tf, shape: ModelShape): { step: () => void; dispose: () => void } {
  const { vocabSize, context, dim, layers, heads, batch } = shape;
  const headDim = dim / heads;
  const variables: TF.Variable[] = [];
  const normal = (s: number[], std: number) => {
    const v = tf.variable(tf.randomNormal(s, 0, std));
    variables.push(v);
    return v;
  };
  const constant = (s: number[], value: number) => {
    const v = tf.variable(tf.fill(s, value));
    variables.push(v);
    return v;
  };
  const tokenEmbedding = normal([vocabSize, dim], 0.02);
  const positionEmbedding = normal([context, dim], 0.02);
  const blocks = Array.from({ length: layers }, () => ({
    ln1: [constant([dim], 1), constant([dim], 0)],
    inProj: [normal([3 * dim, dim], 0.02), constant([3 * dim], 0)],
    outProj: [normal([dim, dim], 0.02), constant([dim], 0)],
    ln2: [constant([dim], 1), constant([dim], 0)],
    fc: [normal([4 * dim, dim], 0.02), constant([4 * dim], 0)],
    proj: [normal([dim, 4 * dim], 0.02), constant([dim], 0)],
  }));
  const lnFinal = [constant([dim], 1), constant([dim], 0)];
  const head = [normal([vocabSize, dim], 0.02), constant([vocabSize], 0)];

  const inputs = tf.randomUniform([batch, context], 0, vocabSize, 'int32');
  const targets = tf.oneHot(tf.randomUniform([batch * context], 0, vocabSize, 'int32'), vocabSize);
  const positions = tf.range(0, context, 1, 'int32');
  // Additive causal mask: -1e9 above the diagonal.
  const mask = tf.mul(tf.sub(tf.linalg.bandPart(tf.ones([context, context]), -1, 0), 1), 1e9);
  const linear = (x: TF.Tensor, [w, b]: TF.Tensor[]) => tf.add(tf.matMul(x, w, false, true), b);
  const optimizer = tf.train.adam(3e-3, 0.9, 0.99, 1e-8);

  const loss = () => {
    const embedded = tf.add(tf.gather(tokenEmbedding, inputs), tf.gather(positionEmbedding, positions));
    let x = tf.reshape(embedded, [batch * context, dim]);
    for (const block of blocks) {
      const h = tfLayerNorm(tf, x, block.ln1[0], block.ln1[1]);
      const qkv = linear(h, block.inProj);
      const [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.transpose(tf.reshape(t, [batch, context, heads, headDim]), [0, 2, 1, 3]));
      const scores = tf.add(tf.matMul(tf.mul(q, 1 / Math.sqrt(headDim)), k, false, true), mask);
      const attended = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [batch * context, dim]);
      x = tf.add(x, linear(attended, block.outProj));
      const h2 = tfLayerNorm(tf, x, block.ln2[0], block.ln2[1]);
      x = tf.add(x, linear(gelu(tf, linear(h2, block.fc)), block.proj));
    }
    const logits = linear(tfLayerNorm(tf, x, lnFinal[0], lnFinal[1]), head);
    return tf.losses.softmaxCrossEntropy(targets, logits) as TF.Scalar;
  };

  return {
    step: () => {
      const value = optimizer.minimize(loss, false, variables);
      value?.dispose();
    },
    dispose: () => {
      optimizer.dispose();
      for (const t of [...variables, inputs, targets, positions, mask]) t.dispose();
    },
  };
}
