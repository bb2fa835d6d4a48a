// Process-wide state: the backends, the default device, gradient mode and the seeded random generator.

import seedrandom from 'seedrandom';
import type { Backend, DeviceName, MemoryStats } from './backends/backend.js';
import { CpuBackend } from './backends/cpu/cpu-backend.js';
import { createWebGpuBackend } from './backends/webgpu/device.js';

export interface InitOptions {
  /** 'webgpu' requires an adapter; 'cpu' skips WebGPU. Without it, WebGPU is used when an adapter exists. */
  backend?: DeviceName;
}

const cpu = new CpuBackend();
let webgpu: Backend | null = null;
let defaultDevice: DeviceName = 'cpu';
let warned = false;

/** Prints a warning once per message, through the one place where the library writes to the terminal. */
export function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  console.warn(`fusegrad: ${message}`);
}

/**
 * Chooses the default backend. With no option it tries WebGPU and falls back to the CPU with one warning;
 * `{ backend: 'webgpu' }` throws where no adapter exists instead.
 */
export async function init(options: InitOptions = {}): Promise<DeviceName> {
  const wanted = options.backend;
  if (wanted !== undefined && wanted !== 'webgpu' && wanted !== 'cpu') {
    throw new TypeError(`init: unknown backend ${JSON.stringify(wanted)}; expected 'webgpu' or 'cpu'`);
  }
  if (wanted === 'cpu') {
    defaultDevice = 'cpu';
    return defaultDevice;
  }
  if (!webgpu) {
    const created = await createWebGpuBackend();
    if (created.backend) {
      webgpu = created.backend;
    } else if (wanted === 'webgpu') {
      throw new Error(
        `init: no WebGPU adapter is available (${created.reason}). ${HOW_TO_GET_WEBGPU} ` +
          "To run on the CPU backend instead, call fg.init() or fg.init({ backend: 'cpu' }).",
      );
    } else {
      warnOnce(`no WebGPU adapter (${created.reason}), so tensors stay on the CPU backend. ${HOW_TO_GET_WEBGPU}`);
    }
  }
  defaultDevice = webgpu ? 'webgpu' : 'cpu';
  return defaultDevice;
}

export const HOW_TO_GET_WEBGPU =
  'To use WebGPU without a GPU on Debian or Ubuntu, run scripts/install-lavapipe.sh from the fusegrad package (it installs Mesa\'s lavapipe driver).';

/** Returns the name of the default backend, where new tensors go unless a device is given. */
export function backend(): DeviceName {
  return defaultDevice;
}

export function getBackend(device: DeviceName = defaultDevice): Backend {
  if (device === 'cpu') return cpu;
  if (device === 'webgpu') {
    if (!webgpu) throw new Error(`device 'webgpu' is not initialized; call await fg.init({ backend: 'webgpu' }) first. ${HOW_TO_GET_WEBGPU}`);
    return webgpu;
  }
  throw new TypeError(`unknown device ${JSON.stringify(device)}; expected 'webgpu' or 'cpu'`);
}

export function hasWebGpu(): boolean {
  return webgpu !== null;
}

/** Waits until every queued kernel of the default backend has finished. */
export async function synchronize(): Promise<void> {
  await getBackend().synchronize();
}

/** Releases the WebGPU device, so that a Node script exits by itself. Tensors on it become unusable. */
export async function shutdown(): Promise<void> {
  if (webgpu) {
    const gpuBackend = webgpu;
    webgpu = null;
    await gpuBackend.destroy();
  }
  defaultDevice = 'cpu';
}

/** Memory held by tensors on the default backend, in bytes. */
export function memory(device: DeviceName = defaultDevice): MemoryStats {
  return getBackend(device).memory();
}

// ---- gradient mode ----

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` with gradient recording off, as torch.no_grad() does, and returns its result. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

// ---- random numbers ----

// seedrandom's Alea: a small, fast generator with a documented seeded stream.
let generator: seedrandom.PRNG = seedrandom.alea(String(Date.now()));

/** Seeds the generator behind randn, rand, randint, dropout and parameter initialization. */
export function manualSeed(seed: number): void {
  if (!Number.isFinite(seed)) throw new TypeError(`manualSeed: seed must be a finite number, got ${seed}`);
  generator = seedrandom.alea(String(seed));
}

/** A uniform number in [0, 1) from the seeded generator. */
export function random(): number {
  return generator();
}
