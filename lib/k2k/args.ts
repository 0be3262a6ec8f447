/** Argument checks for KernelSandbox: names, backends and columnar batches. */
import { describe } from '../errors';
import type { MessageColumns } from './check-js';

export type SandboxBackend = 'auto' | 'js' | 'native' | 'cuda';

/** Largest batch one call accepts. */
export const MAX_BATCH = 1 << 26;

const NAME_MAX = 256;
const BACKENDS: ReadonlySet<string> = new Set(['auto', 'js', 'native', 'cuda']);

export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > NAME_MAX) {
    throw new TypeError(`Expected a non-empty ${what} name of at most ${NAME_MAX} characters but received ${describe(name)}`);
  }
  return name;
}

export function backendOption(value: unknown): SandboxBackend {
  if (value === undefined) return 'auto';
  if (typeof value !== 'string' || !BACKENDS.has(value)) {
    throw new TypeError(`Expected 'auto', 'js', 'native' or 'cuda' for backend but received ${describe(value)}`);
  }
  return value as SandboxBackend;
}

export function columns(batch: unknown): MessageColumns {
  if (typeof batch !== 'object' || batch === null) {
    throw new TypeError(`Expected a batch { src, dst, topic, bytes } of Uint32Arrays but received ${describe(batch)}`);
  }
  const b = batch as Record<string, unknown>;
  for (const key of ['src', 'dst', 'topic', 'bytes']) {
    if (!(b[key] instanceof Uint32Array)) throw new TypeError(`Expected a Uint32Array for batch.${key} but received ${describe(b[key])}`);
  }
  const c = b as unknown as MessageColumns;
  const n = c.src.length;
  if (c.dst.length !== n || c.topic.length !== n || c.bytes.length !== n) {
    throw new RangeError(`Batch columns differ in length (src ${n}, dst ${c.dst.length}, topic ${c.topic.length}, bytes ${c.bytes.length})`);
  }
  if (n > MAX_BATCH) throw new RangeError(`A batch holds at most ${MAX_BATCH} messages, not ${n}`);
  return c;
}
