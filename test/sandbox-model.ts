/**
 * A reference model of the K2K sandbox, written plainly (Maps, Sets, one
 * message at a time) from the documented rules, and a generator of random
 * scenarios. The differential tests hold every backend to this model.
 */
import { KernelSandbox, ResourceLimits, SandboxPolicy, VERDICT_NAMES } from '../lib/k2k';
import { randomInt } from './helpers';

export interface PolicySpec {
  preset: 'new' | 'restrictive' | 'permissive';
  allow?: string[];
  deny?: string[];
  allowAll?: boolean;
  topics?: string[];
  access?: 'read-only' | 'read-write';
}

export interface LimitSpec {
  maxMemoryBytes: number;
  maxExecutionMs: number;
  maxMessagesPerSecond: number;
  maxK2kConnections: number;
}

export interface Batch {
  src: Uint32Array;
  dst: Uint32Array;
  topic: Uint32Array;
  bytes: Uint32Array;
}

/** Whole-string match where `*` is any run of characters: plain recursion, no RegExp. */
export function wildcardMatch(pattern: string, name: string): boolean {
  if (pattern.length === 0) return name.length === 0;
  if (pattern[0] === '*') {
    for (let i = 0; i <= name.length; i++) if (wildcardMatch(pattern.slice(1), name.slice(i))) return true;
    return false;
  }
  return name.length > 0 && pattern[0] === name[0] && wildcardMatch(pattern.slice(1), name.slice(1));
}

export function buildPolicy(spec: PolicySpec): SandboxPolicy {
  let p = spec.preset === 'restrictive' ? SandboxPolicy.restrictive() : spec.preset === 'permissive' ? SandboxPolicy.permissive() : new SandboxPolicy();
  if (spec.allow) p = p.k2kAllowList(spec.allow);
  if (spec.deny) p = p.denyK2kTo(spec.deny);
  if (spec.allowAll) p = p.allowAllK2k();
  if (spec.topics) p = p.allowTopics(spec.topics);
  if (spec.access) p = p.memoryAccess(spec.access);
  return p;
}

export function buildSandbox(limits: LimitSpec, policy: PolicySpec): KernelSandbox {
  // Builder form and plain form alternate, so both are exercised.
  const l = (limits.maxMemoryBytes & 1) === 0
    ? new ResourceLimits()
        .maxMemoryBytes(limits.maxMemoryBytes)
        .maxExecutionTime(limits.maxExecutionMs)
        .maxMessagesPerSecond(limits.maxMessagesPerSecond)
        .maxK2kConnections(limits.maxK2kConnections)
    : limits;
  return new KernelSandbox(l, buildPolicy(policy));
}

interface RefKernel {
  name: string;
  tokens: number;
  last: number | null;
  inFlight: number;
  memory: number;
  conns: Set<number>;
}

/** The model: the documented rules, message by message. */
export class ReferenceSandbox {
  readonly kernels: RefKernel[] = [];
  readonly topics: string[] = [];

  constructor(readonly limits: LimitSpec, readonly policy: PolicySpec) {}

  registerKernel(name: string): number {
    const found = this.kernels.findIndex((k) => k.name === name);
    if (found >= 0) return found;
    this.kernels.push({ name, tokens: 0, last: null, inFlight: 0, memory: 0, conns: new Set() });
    return this.kernels.length - 1;
  }

  registerTopic(name: string): number {
    const found = this.topics.indexOf(name);
    if (found >= 0) return found;
    this.topics.push(name);
    return this.topics.length - 1;
  }

  k2kAllowed(name: string): boolean {
    const p = this.policy;
    if ((p.deny ?? []).some((d) => wildcardMatch(d, name))) return false;
    // buildPolicy applies allow before allowAll, so allowAll (when set) was last.
    if (p.allowAll) return true;
    if (p.allow !== undefined) return p.allow.some((a) => wildcardMatch(a, name));
    if (p.preset === 'permissive') return true;
    if (p.preset === 'restrictive') return false;
    return (p.deny ?? []).length > 0;
  }

  topicAllowed(name: string): boolean {
    if (this.policy.topics !== undefined) return this.policy.topics.some((t) => wildcardMatch(t, name));
    return this.policy.preset !== 'restrictive';
  }

  readOnly(): boolean {
    return (this.policy.access ?? (this.policy.preset === 'restrictive' ? 'read-only' : 'read-write')) === 'read-only';
  }

  check(batch: Batch, now: number): string[] {
    const out: string[] = [];
    const { maxMessagesPerSecond: rate, maxMemoryBytes: memory, maxK2kConnections: maxConn } = this.limits;
    for (let i = 0; i < batch.src.length; i++) {
      const s = batch.src[i];
      const d = batch.dst[i];
      const t = batch.topic[i];
      const b = batch.bytes[i];
      const src = this.kernels[s];
      const dst = this.kernels[d];
      if (src === undefined || dst === undefined) { out.push('unknown_kernel'); continue; }
      if (!this.k2kAllowed(dst.name)) { out.push('unauthorized_k2k'); continue; }
      if (t >= this.topics.length || !this.topicAllowed(this.topics[t])) { out.push('topic_denied'); continue; }
      if (this.readOnly() && b > 0) { out.push('write_denied'); continue; }
      if (!src.conns.has(d)) {
        if (src.conns.size >= maxConn) { out.push('connection_limit'); continue; }
        src.conns.add(d);
      }
      if (rate !== Infinity) {
        // Milli-tokens: rate per ms, at most one second's worth.
        if (src.last === null) { src.tokens = rate * 1000; src.last = now; }
        else if (now > src.last) { src.tokens = Math.min(rate * 1000, src.tokens + Math.min(now - src.last, 1000) * rate); src.last = now; }
        if (src.tokens < 1000) { out.push('rate_limited'); continue; }
        src.tokens -= 1000;
      }
      if (src.memory + src.inFlight + b > memory) { out.push('memory_exceeded'); continue; }
      src.inFlight += b;
      out.push('allow');
    }
    return out;
  }
}

const NAME_PARTS = ['proc', 'agg', 'ext', 'admin', 'audit', 'public', 'x'];

function randomName(next: () => number): string {
  const parts = randomInt(next, 1, 3);
  let name = '';
  for (let i = 0; i < parts; i++) name += (i > 0 ? (next() < 0.5 ? '_' : '.') : '') + NAME_PARTS[randomInt(next, 0, NAME_PARTS.length - 1)];
  return name;
}

/** A pattern with wildcards at the start, middle or end (or none). */
function randomPattern(next: () => number): string {
  const name = randomName(next);
  const r = next();
  if (r < 0.2) return name;
  if (r < 0.4) return name.slice(0, randomInt(next, 0, name.length)) + '*';
  if (r < 0.6) return '*' + name.slice(randomInt(next, 0, name.length));
  if (r < 0.8) {
    const cut = randomInt(next, 0, name.length);
    return name.slice(0, cut) + '*' + name.slice(Math.min(name.length, cut + randomInt(next, 0, 3)));
  }
  return '*';
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[randomInt(next, 0, items.length - 1)];
}

export function randomPolicy(next: () => number): PolicySpec {
  const spec: PolicySpec = { preset: pick(next, ['new', 'restrictive', 'permissive'] as const) };
  const list = (): string[] => Array.from({ length: randomInt(next, 0, 3) }, () => randomPattern(next));
  if (next() < 0.5) spec.allow = list();
  if (next() < 0.5) spec.deny = list();
  if (next() < 0.2) spec.allowAll = true;
  if (next() < 0.5) spec.topics = list();
  if (next() < 0.5) spec.access = pick(next, ['read-only', 'read-write'] as const);
  return spec;
}

export function randomLimits(next: () => number): LimitSpec {
  return {
    maxMemoryBytes: pick(next, [Infinity, 0, randomInt(next, 1, 5000), randomInt(next, 1, 2_000_000)]),
    maxExecutionMs: pick(next, [Infinity, randomInt(next, 0, 1000)]),
    maxMessagesPerSecond: pick(next, [Infinity, 0, randomInt(next, 1, 50), randomInt(next, 1, 100_000)]),
    maxK2kConnections: pick(next, [Infinity, 0, randomInt(next, 1, 4), randomInt(next, 1, 40)]),
  };
}

/** A batch over `kernels` and `topics` ids, a few of them out of range. */
export function randomBatch(next: () => number, size: number, kernels: number, topics: number): Batch {
  const src = new Uint32Array(size);
  const dst = new Uint32Array(size);
  const topic = new Uint32Array(size);
  const bytes = new Uint32Array(size);
  // A few hot sources make the order-dependent rules bite.
  const hot = randomInt(next, 1, Math.max(1, kernels));
  const maxBytes = pick(next, [0, 64, 4096, 0xffffffff]);
  for (let i = 0; i < size; i++) {
    src[i] = next() < 0.002 ? kernels + randomInt(next, 0, 3) : randomInt(next, 0, Math.max(0, hot - 1));
    dst[i] = next() < 0.002 ? 0xffffffff : randomInt(next, 0, Math.max(0, kernels - 1));
    topic[i] = next() < 0.01 ? topics + randomInt(next, 0, 2) : randomInt(next, 0, Math.max(0, topics - 1));
    bytes[i] = next() < 0.3 ? 0 : maxBytes === 0xffffffff && next() < 0.01 ? 0xffffffff : randomInt(next, 0, maxBytes);
  }
  return { src, dst, topic, bytes };
}

export { randomName };

/**
 * Runs one random scenario (a policy, limits, kernels registered over time,
 * batches at a moving clock, usage and releases in between) on the model and
 * on a sandbox, choosing each batch's backend with `backendFor`. Returns a
 * description of the first difference, or null, plus what was compared.
 */
export function compareWithModel(
  seed: number,
  next: () => number,
  backendFor: (batchIndex: number) => 'js' | 'native' | 'cuda',
  options: { batches: number; maxSize: number; largeEvery: number },
): { mismatch: string | null; batches: number; messages: number } {
  const limits = randomLimits(next);
  const policy = randomPolicy(next);
  const ref = new ReferenceSandbox(limits, policy);
  const box = buildSandbox(limits, policy);
  const where = (what: string): string => `seed ${seed}: ${what} (limits ${JSON.stringify(limits)}, policy ${JSON.stringify(policy)})`;
  const addKernels = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const name = randomName(next) + (next() < 0.7 ? String(randomInt(next, 0, 50)) : '');
      const a = ref.registerKernel(name);
      const b = box.registerKernel(name);
      if (a !== b) throw new Error(where(`kernel id ${b} for ${name}, model ${a}`));
    }
  };
  const addTopics = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const name = randomName(next);
      if (ref.registerTopic(name) !== box.registerTopic(name)) throw new Error(where(`topic id for ${name}`));
    }
  };
  addKernels(randomInt(next, 1, 40));
  addTopics(randomInt(next, 1, 8));
  let now = randomInt(next, 0, 1_000_000);
  let messages = 0;
  for (let bi = 0; bi < options.batches; bi++) {
    if (next() < 0.3) addKernels(randomInt(next, 1, 5));
    if (next() < 0.2) addTopics(randomInt(next, 1, 2));
    const k = ref.kernels.length;
    if (next() < 0.3) {
      const id = randomInt(next, 0, k - 1);
      const memoryBytes = randomInt(next, 0, 3000);
      ref.kernels[id].memory = memoryBytes;
      box.recordUsage(id, { memoryBytes });
    }
    if (next() < 0.3) {
      const id = randomInt(next, 0, k - 1);
      const bytes = randomInt(next, 0, 100_000);
      ref.kernels[id].inFlight = Math.max(0, ref.kernels[id].inFlight - bytes);
      box.release(ref.kernels[id].name, bytes);
    }
    const step = next();
    now = Math.max(0, now + (step < 0.3 ? 0 : step < 0.6 ? randomInt(next, 1, 20) : step < 0.9 ? randomInt(next, 1, 3000) : -randomInt(next, 1, 500)));
    const size = bi % options.largeEvery === options.largeEvery - 1 ? randomInt(next, 0, options.maxSize) : next() < 0.05 ? 0 : randomInt(next, 1, 3000);
    const batch = randomBatch(next, size, k, ref.topics.length);
    const expected = ref.check(batch, now);
    const backend = backendFor(bi);
    const got = box.checkMessages(batch, now, { backend });
    if (got.backend !== backend) return { mismatch: where(`ran on ${got.backend}, asked for ${backend}`), batches: bi, messages };
    for (let i = 0; i < size; i++) {
      const name = VERDICT_NAMES[got.verdicts[i]];
      if (name !== expected[i]) {
        return { mismatch: where(`batch ${bi} (${backend}, ${size} messages, now ${now}) message ${i} [src ${batch.src[i]} dst ${batch.dst[i]} topic ${batch.topic[i]} bytes ${batch.bytes[i]}]: ${name}, model ${expected[i]}`), batches: bi, messages };
      }
    }
    const denied = expected.filter((v) => v !== 'allow').length;
    if (got.violations.total !== denied) return { mismatch: where(`batch ${bi}: total ${got.violations.total}, model ${denied}`), batches: bi, messages };
    for (let id = 0; id < k; id++) {
      const u = box.usage(id);
      const r = ref.kernels[id];
      const tokens = limits.maxMessagesPerSecond === Infinity ? Infinity : r.last === null ? limits.maxMessagesPerSecond : Math.floor(r.tokens / 1000);
      if (u.inFlightBytes !== r.inFlight || u.tokens !== tokens || (limits.maxK2kConnections !== Infinity && u.connections !== r.conns.size)) {
        return { mismatch: where(`batch ${bi}: kernel ${id} usage ${JSON.stringify(u)}, model inFlight ${r.inFlight} tokens ${tokens} connections ${r.conns.size}`), batches: bi, messages };
      }
    }
    messages += size;
  }
  return { mismatch: null, batches: options.batches, messages };
}

