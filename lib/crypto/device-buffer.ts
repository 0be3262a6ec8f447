/**
 * DeviceBuffer: bytes that live where the GPU work happens. On the CUDA
 * backend it is device memory on device 0 (cuda/device_buffer_binding.cc);
 * on the CPU backend it is host memory behind the same API, so code that uses
 * it runs unchanged with or without a GPU. `device: 'auto'` (the default)
 * picks CUDA when a device is present.
 *
 * Memory is zeroed when allocated and when freed. `free()` releases it; using
 * a freed buffer, or freeing it twice, is a GuardError (ERR_CLOSED). A buffer
 * that is never freed is zeroed and released by a finalizer when it is
 * garbage collected.
 */
import type { DeviceHandle } from '../native/addon-types';
import { ErrorCodes, GuardError, describe } from '../errors';
import { gpuBackend } from '../native/loader';
import { cudaAddon, onDevice } from './aead';

export type DeviceKind = 'auto' | 'cuda' | 'cpu';

/** Largest buffer accepted (bytes). */
export const MAX_DEVICE_BUFFER = 2 ** 31;

const finalizer = new FinalizationRegistry<Uint8Array>((bytes) => bytes.fill(0));

function resolveDevice(device: unknown): 'cpu' | 'cuda' {
  if (device === 'cpu') return 'cpu';
  if (device === 'cuda') {
    cudaAddon(); // ERR_GPU_UNAVAILABLE without one
    return 'cuda';
  }
  if (device === undefined || device === 'auto') return gpuBackend().kind === 'cuda' ? 'cuda' : 'cpu';
  throw new TypeError(`Expected 'auto', 'cuda' or 'cpu' for device but received ${describe(device)}`);
}

export class DeviceBuffer {
  /** Host memory (CPU backend). */
  #bytes: Uint8Array | null = null;
  /** Device memory (CUDA backend). */
  #handle: DeviceHandle | null = null;
  #size: number;
  readonly backend: 'cuda' | 'cpu';

  private constructor(size: number, backend: 'cpu' | 'cuda', bytes?: Uint8Array) {
    this.#size = size;
    this.backend = backend;
    if (backend === 'cuda') {
      // The native finalizer of the handle frees device memory if this object is collected.
      this.#handle = onDevice(() => cudaAddon().deviceAlloc(size));
    } else {
      this.#bytes = bytes ?? new Uint8Array(size);
      finalizer.register(this, this.#bytes, this);
    }
  }

  /** `n` zeroed bytes. */
  static alloc(n: number, options: { device?: DeviceKind } = {}): DeviceBuffer {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_DEVICE_BUFFER) {
      throw new RangeError(`Expected a byte length in [0, ${MAX_DEVICE_BUFFER}] but received ${describe(n)}`);
    }
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected an options object but received ${describe(options)}`);
    return new DeviceBuffer(n, resolveDevice(options.device));
  }

  /** A copy of `bytes`. */
  static from(bytes: Uint8Array, options: { device?: DeviceKind } = {}): DeviceBuffer {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array but received ${describe(bytes)}`);
    const b = DeviceBuffer.alloc(bytes.length, options);
    b.copyFrom(bytes, 0);
    return b;
  }

  static isDeviceBuffer(value: unknown): value is DeviceBuffer {
    return value instanceof DeviceBuffer;
  }

  get byteLength(): number {
    this.#check();
    return this.#size;
  }

  get freed(): boolean {
    return this.#bytes === null && this.#handle === null;
  }

  /** A host copy of the contents. */
  toHost(): Buffer {
    this.#check();
    if (this.#handle !== null) {
      const out = Buffer.alloc(this.#size);
      const handle = this.#handle;
      onDevice(() => cudaAddon().deviceRead(handle, out, 0));
      return out;
    }
    return Buffer.from(this.#bytes as Uint8Array);
  }

  /** Copies `src` (host bytes or another DeviceBuffer) in at `offset`. */
  copyFrom(src: Uint8Array | DeviceBuffer, offset = 0): void {
    this.#check();
    const length = src instanceof DeviceBuffer ? src.byteLength : src instanceof Uint8Array ? src.length : -1;
    if (length < 0) throw new TypeError(`Expected a Uint8Array or DeviceBuffer but received ${describe(src)}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.#size) {
      throw new RangeError(`${length} bytes at offset ${String(offset)} do not fit in a ${this.#size}-byte buffer`);
    }
    if (this.#handle !== null) {
      const dst = this.#handle;
      if (src instanceof DeviceBuffer && src.#handle !== null) {
        const from = src.#handle;
        onDevice(() => cudaAddon().deviceCopy(dst, offset, from));
      } else {
        const bytes = src instanceof DeviceBuffer ? (src.#bytes as Uint8Array) : src;
        onDevice(() => cudaAddon().deviceWrite(dst, bytes, offset));
      }
      return;
    }
    (this.#bytes as Uint8Array).set(src instanceof DeviceBuffer ? src.toHost() : src, offset);
  }

  /** Zeroes and releases the memory. */
  free(): void {
    this.#check();
    if (this.#handle !== null) {
      const handle = this.#handle;
      this.#handle = null;
      onDevice(() => cudaAddon().deviceFree(handle));
      return;
    }
    (this.#bytes as Uint8Array).fill(0);
    this.#bytes = null;
    finalizer.unregister(this);
  }

  /** @internal The host memory of a CPU buffer (valid until free). */
  static hostView(buffer: DeviceBuffer): Uint8Array {
    buffer.#check();
    if (buffer.#bytes === null) throw new TypeError('hostView needs a CPU DeviceBuffer');
    return buffer.#bytes;
  }

  /** @internal The device memory handle of a CUDA buffer. */
  static deviceHandle(buffer: DeviceBuffer): DeviceHandle {
    buffer.#check();
    if (buffer.#handle === null) throw new TypeError('deviceHandle needs a CUDA DeviceBuffer');
    return buffer.#handle;
  }

  /** @internal Wraps host bytes this package just produced (no copy). */
  static adopt(bytes: Uint8Array): DeviceBuffer {
    return new DeviceBuffer(bytes.length, 'cpu', bytes);
  }

  #check(): void {
    if (this.freed) throw new GuardError(ErrorCodes.CLOSED, 'DeviceBuffer has been freed');
  }
}
