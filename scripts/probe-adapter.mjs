// Prints the WebGPU adapter that Dawn finds, and exits with 1 where there is none.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('probe-adapter: no WebGPU adapter found');
  process.exit(1);
}
const info = adapter.info;
console.log(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim());
console.log(`features: ${[...adapter.features].sort().join(', ')}`);
const device = await adapter.requestDevice();
device.destroy();
