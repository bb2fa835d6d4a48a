// Synchronous copies between devices where no readback is needed: CPU data is already on the host, so it
// uploads to WebGPU without awaiting. Loading state dicts uses this to accept CPU checkpoints on any device.

import type { DeviceName } from '../backends/backend.js';
import type { CpuBackend } from '../backends/cpu/cpu-backend.js';
import { getBackend, noGrad } from '../runtime.js';
import type { DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';

/** Throws unless `value` can be copied to `device` without a readback (same device, or from the CPU). */
export function checkSyncMove(op: string, value: Tensor, device: DeviceName): void {
  value.assertAlive(op);
  if (value.device === device || value.device === 'cpu') return;
  throw new Error(
    `${op}: a tensor on '${value.device}' cannot be copied to '${device}' synchronously, because that needs a readback; ` +
      `load the checkpoint with fg.load(path, { device: '${device}' }) or move it first with await t.toDevice('${device}')`,
  );
}

/** A new tensor with value's data on `device`, converted to `dtype`; cut off from the graph. */
export function moveToDeviceSync(op: string, value: Tensor, device: DeviceName, dtype: DType = value.dtype): Tensor {
  checkSyncMove(op, value, device);
  return noGrad(() => {
    if (value.device === device) return value.dtype === dtype ? value.clone() : value.to(dtype);
    const host = (getBackend('cpu') as CpuBackend).readSync(value.asView(op));
    const moved = Tensor.fromStorage(getBackend(device).upload(value.dtype, host), value.shape);
    if (moved.dtype === dtype) return moved;
    const converted = moved.to(dtype);
    moved.dispose();
    return converted;
  });
}
