// Finds a WebGPU adapter: navigator.gpu in a browser, the `webgpu` package (Dawn) in Node.

import type { Backend } from '../backend.js';
import { WebGpuBackend } from './webgpu-backend.js';

export interface CreatedBackend {
  backend: Backend | null;
  /** The reason no backend was created, for the warning or the error. */
  reason: string;
}

async function getGpu(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (typeof process === 'undefined' || !process.versions?.node) return null;
  const dawn = await import('webgpu');
  // Dawn's classes (GPUBufferUsage and friends) must be globals before any call into them.
  Object.assign(globalThis, dawn.globals);
  return dawn.create([]);
}

export async function createWebGpuBackend(): Promise<CreatedBackend> {
  let gpu: GPU | null;
  try {
    gpu = await getGpu();
  } catch (error) {
    return { backend: null, reason: `the webgpu package failed to load: ${(error as Error).message}` };
  }
  if (!gpu) return { backend: null, reason: 'this environment has no navigator.gpu' };
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { backend: null, reason: 'requestAdapter() returned null, so no Vulkan, Metal or D3D12 driver was found' };
  const wanted: GPUFeatureName[] = ['shader-f16'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  const info = adapter.info;
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  const backend = new WebGpuBackend(device, name || 'WebGPU adapter', gpu);
  // Validation errors surface at the next readback or synchronize(), as exceptions.
  device.addEventListener('uncapturederror', (event) => backend.recordError((event as GPUUncapturedErrorEvent).error.message));
  return { backend, reason: '' };
}
