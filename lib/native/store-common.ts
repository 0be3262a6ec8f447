/** Pieces shared by the native-backed stores (decision cache, replay detector). */
import { describe } from '../errors';

/** Returns `value` if it is an integer in [min, max], else throws RangeError naming `name`. */
export function integerOption(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected an integer in [${min}, ${max}] for ${name} but received ${describe(value)}`);
  }
  return value;
}

/** A clock option: a function returning milliseconds since the epoch. */
export function clockOption(value: unknown): () => number {
  if (value === undefined) return Date.now;
  if (typeof value !== 'function') throw new TypeError(`Expected a function for clock but received ${describe(value)}`);
  return value as () => number;
}

/** Checks an options argument is an object (or absent). */
export function optionsObject<T extends object>(value: T | undefined, what: string): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`Expected an options object for ${what} but received ${describe(value)}`);
  }
  return value;
}

/** Checks a shared-store name. */
export function storeName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw new TypeError(`Expected a non-empty string of at most 256 characters for name but received ${describe(name)}`);
  }
  return name;
}

/** Largest capacity a store accepts (entries). */
export const MAX_CAPACITY = 2 ** 26;

/**
 * The fallback's stand-in for the native shared-store registry. Without the
 * addon no memory is shared between threads, so a "shared" store is shared by
 * the handles of one thread. Reference counted like the native one: the store
 * is forgotten when its last handle is closed or collected.
 */
export class JsSharedRegistry<T extends { capacity: number }> {
  readonly #entries = new Map<string, { store: T; refs: number }>();
  readonly #finalizer = new FinalizationRegistry<string>((name) => this.release(name));

  acquire(name: string, capacity: number, make: () => T, owner: object, what: string): T {
    let entry = this.#entries.get(name);
    if (entry && entry.store.capacity !== capacity) {
      throw new RangeError(`A shared ${what} of this name exists with another capacity`);
    }
    if (!entry) {
      entry = { store: make(), refs: 0 };
      this.#entries.set(name, entry);
    }
    entry.refs++;
    this.#finalizer.register(owner, name, owner);
    return entry.store;
  }

  /** Drops one reference held by `owner` (from close()). */
  releaseFor(name: string, owner: object): void {
    if (this.#finalizer.unregister(owner)) this.release(name);
  }

  private release(name: string): void {
    const entry = this.#entries.get(name);
    if (entry && --entry.refs === 0) this.#entries.delete(name);
  }
}
