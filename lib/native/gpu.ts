/** GPU discovery: the devices the CUDA backend can use (empty on the CPU backend). */
import type { GpuDevice } from './addon-types';
import { ErrorCodes, GuardError } from '../errors';
import { gpuBackend } from './loader';

export type { GpuDevice } from './addon-types';

/** CUDA devices in use; `[]` when the CPU backend is active. */
export function gpuDevices(): GpuDevice[] {
  return gpuBackend().devices.map((d) => ({ ...d }));
}

/**
 * Runs the CUDA addon's self-test kernel on `device` (a round trip through a
 * real launch). Throws `ERR_GPU_UNAVAILABLE` on the CPU backend.
 */
export function gpuSelfTest(device = 0): Uint32Array {
  const gpu = gpuBackend();
  if (gpu.kind !== 'cuda' || gpu.addon === null) {
    throw new GuardError(ErrorCodes.GPU_UNAVAILABLE, `No CUDA backend: ${gpu.reason ?? 'unknown reason'}`);
  }
  if (!Number.isSafeInteger(device) || device < 0 || device >= gpu.devices.length) {
    throw new RangeError(`Expected a device index in [0, ${gpu.devices.length}) but received ${String(device)}`);
  }
  return gpu.addon.selfTest(device);
}
