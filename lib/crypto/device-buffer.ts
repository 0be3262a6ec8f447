/**
 * DeviceBuffer: bytes that live where the GPU work happens. On the CPU
 * backend (no GPU, or `device: 'cpu'`) it is host memory behind the same API,
 * so code that uses it runs unchanged with or without a GPU.
 *
 * `free()` releases (and zeroes) the memory; using a freed buffer, or freeing
 * it twice, is a GuardError (ERR_CLOSED). A buffer that is never freed is
 * zeroed and released by a finalizer when it is garbage collected.
 */
import { ErrorCodes, GuardError, describe } from '../errors';

export type DeviceKind = 'auto' | 'cuda' | 'cpu';

/** Largest buffer accepted (bytes). */
export const MAX_DEVICE_BUFFER = 2 ** 31;

const finalizer = new FinalizationRegistry<Uint8Array>((bytes) => bytes.fill(0));

function resolveDevice(device: unknown): 'cpu' {
  if (device === undefined || device === 'auto' || device === 'cpu') return 'cpu';
  if (device === 'cuda') throw new GuardError(ErrorCodes.GPU_UNAVAILABLE, 'CUDA device buffers are not part of this release; use device "cpu" or "auto"');
  throw new TypeError(`Expected 'auto', 'cuda' or 'cpu' for device but received ${describe(device)}`);
}

export class DeviceBuffer {
  #bytes: Uint8Array | null;
  readonly backend: 'cuda' | 'cpu';

  private constructor(bytes: Uint8Array, backend: 'cpu') {
    this.#bytes = bytes;
    this.backend = backend;
    finalizer.register(this, bytes, this);
  }

  /** `n` zeroed bytes. */
  static alloc(n: number, options: { device?: DeviceKind } = {}): DeviceBuffer {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_DEVICE_BUFFER) {
      throw new RangeError(`Expected a byte length in [0, ${MAX_DEVICE_BUFFER}] but received ${describe(n)}`);
    }
    return new DeviceBuffer(new Uint8Array(n), resolveDevice(options.device));
  }

  /** A copy of `bytes`. */
  static from(bytes: Uint8Array, options: { device?: DeviceKind } = {}): DeviceBuffer {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array but received ${describe(bytes)}`);
    const b = DeviceBuffer.alloc(bytes.length, options);
    (b.#bytes as Uint8Array).set(bytes);
    return b;
  }

  static isDeviceBuffer(value: unknown): value is DeviceBuffer {
    return value instanceof DeviceBuffer;
  }

  get byteLength(): number {
    return this.#live().length;
  }

  get freed(): boolean {
    return this.#bytes === null;
  }

  /** A host copy of the contents. */
  toHost(): Buffer {
    return Buffer.from(this.#live());
  }

  /** Copies `src` (host bytes or another DeviceBuffer) in at `offset`. */
  copyFrom(src: Uint8Array | DeviceBuffer, offset = 0): void {
    const dst = this.#live();
    const bytes = src instanceof DeviceBuffer ? src.#live() : src;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array or DeviceBuffer but received ${describe(src)}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + bytes.length > dst.length) {
      throw new RangeError(`${bytes.length} bytes at offset ${String(offset)} do not fit in a ${dst.length}-byte buffer`);
    }
    dst.set(bytes, offset);
  }

  /** Zeroes and releases the memory. */
  free(): void {
    const bytes = this.#live();
    bytes.fill(0);
    this.#bytes = null;
    finalizer.unregister(this);
  }

  /** @internal The host memory of a CPU buffer (valid until free). */
  static hostView(buffer: DeviceBuffer): Uint8Array {
    return buffer.#live();
  }

  /** @internal Wraps host bytes this package just produced (no copy). */
  static adopt(bytes: Uint8Array): DeviceBuffer {
    return new DeviceBuffer(bytes, 'cpu');
  }

  #live(): Uint8Array {
    if (this.#bytes === null) throw new GuardError(ErrorCodes.CLOSED, 'DeviceBuffer has been freed');
    return this.#bytes;
  }
}
