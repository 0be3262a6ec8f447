/**
 * The shape of the two native addons, declared once. Everything that calls
 * into a `.node` file goes through these types.
 */

/** A precomputed HMAC-SHA256 key living in native memory. */
export interface NativeHmacKey {
  signHex(data: string | Uint8Array): string;
  signInto(data: string | Uint8Array, out: Uint8Array, outOffset: number): void;
  verify(data: string | Uint8Array, mac: Uint8Array): boolean;
  destroy(): void;
}

/** guardkernel.node, built by binding.gyp. */
export interface CoreAddon {
  readonly abiVersion: number;
  sha256Into(data: string | Uint8Array, out: Uint8Array, outOffset: number): void;
  sha256Hex(data: string | Uint8Array, withPrefix: boolean): string;
  hmacSha256Into(key: Uint8Array, data: string | Uint8Array, out: Uint8Array, outOffset: number): void;
  /** `'sha-ni'` or `'portable'`. */
  shaImplementation(): string;
  /** Test hook: force the portable SHA-256 path; returns the active implementation. */
  forcePortableSha(force: boolean): string;
  HmacKey: new (key: Uint8Array) => NativeHmacKey;
  /** Native HmacKey objects not yet finalized, across all threads (lifetime tests). */
  liveHmacKeys(): number;
}

/** One CUDA device as the CUDA addon reports it. */
export interface GpuDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
  multiprocessors: number;
}

/** guardkernel_cuda.node, built by CMakeLists.txt with cmake-js. */
export interface CudaAddon {
  readonly abiVersion: number;
  /** Device count; never throws (any CUDA error is reported as `{ count: 0, error }`). */
  deviceCount(): { count: number; error?: string };
  devices(): GpuDevice[];
  /** Runs a tiny kernel on `device` and returns its output, proving the toolchain end to end. */
  selfTest(device: number): Uint32Array;
  /** CUDA runtime version the addon was built against (e.g. 13000). */
  runtimeVersion(): number;
}

/** Must match kAbiVersion in native/addon.cc. */
export const CORE_ABI_VERSION = 1;
/** Must match kAbiVersion in cuda/addon.cc. */
export const CUDA_ABI_VERSION = 1;
