/**
 * SandboxPolicy: which kernels a sandboxed kernel may message, on which
 * topics, and whether it may write (send payload bytes).
 *
 * Name patterns: `*` matches any run of characters (none included), anything
 * else is literal, and the whole name must match (`external_*` matches
 * `external_a` but not `my_external_a`). Patterns are compiled once; names are
 * resolved against them when a kernel or topic registers, so message checks
 * do no string matching.
 *
 * K2K rule for a destination name, in order:
 *   1. it matches a deny pattern            → unauthorized (deny always wins)
 *   2. allow-all mode (permissive(), or
 *      allowAllK2k() called last)           → allowed
 *   3. an allow list exists (k2kAllowList
 *      called last, or restrictive())       → allowed iff a pattern matches
 *   4. only deny patterns exist             → allowed
 *   5. nothing configured                   → unauthorized (fail closed)
 * Topics: allowed iff an `allowTopics` pattern matches; without any, all
 * topics are allowed, except under `restrictive()`, which allows none until
 * `allowTopics` names some.
 * Memory access `read-only`: a message with a payload (bytes > 0) is a write
 * into shared device memory and is refused (`write_denied`); zero-byte
 * messages (signals, read requests) pass.
 */
import { describe } from '../errors';

export type MemoryAccess = 'read-only' | 'read-write';

export interface CompiledPattern {
  readonly source: string;
  test(name: string): boolean;
}

const MAX_PATTERN = 256;
const MAX_PATTERNS = 4096;

let steps = 0;

/** Characters compared by name patterns since the last reset: for tests that bound the matcher's work (not a timer). */
export function namePatternSteps(): number {
  return steps;
}

export function resetNamePatternSteps(): void {
  steps = 0;
}

/**
 * Matches without backtracking: the pieces between stars are placed left to
 * right, each at its first occurrence after the previous one (with a single
 * kind of star the leftmost placement never loses a match). Start positions
 * only move forward, so the work is at most name x (longest piece + 1).
 */
function matchPieces(head: string, middle: readonly string[], tail: string, name: string): boolean {
  const end = name.length - tail.length;
  steps += head.length + tail.length;
  if (end < head.length || !name.startsWith(head) || !name.endsWith(tail)) return false;
  let pos = head.length;
  for (const piece of middle) {
    const m = piece.length;
    let s = pos;
    for (; s + m <= end; s++) {
      let j = 0;
      while (j < m && name.charCodeAt(s + j) === piece.charCodeAt(j)) j++;
      steps += j + 1;
      if (j === m) break;
    }
    if (s + m > end) return false;
    pos = s + m;
  }
  return true;
}

/** Compiles a `*` wildcard pattern; throws for anything that is not a usable pattern. */
export function compileNamePattern(pattern: unknown): CompiledPattern {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN) {
    throw new TypeError(`Expected a non-empty pattern of at most ${MAX_PATTERN} characters but received ${describe(pattern)}`);
  }
  if (!pattern.includes('*')) return { source: pattern, test: (name) => name === pattern };
  const pieces = pattern.split('*');
  const head = pieces[0];
  const tail = pieces[pieces.length - 1];
  const middle = pieces.slice(1, -1).filter((p) => p.length > 0);
  return { source: pattern, test: (name) => matchPieces(head, middle, tail, name) };
}

function patternList(value: unknown, what: string): CompiledPattern[] {
  if (!Array.isArray(value)) throw new TypeError(`Expected an array of patterns for ${what} but received ${describe(value)}`);
  if (value.length > MAX_PATTERNS) throw new RangeError(`At most ${MAX_PATTERNS} patterns fit in ${what}`);
  return value.map((p) => compileNamePattern(p));
}

export class SandboxPolicy {
  #allowAll = false;
  #allow: CompiledPattern[] | null = null;
  #deny: CompiledPattern[] = [];
  #topics: CompiledPattern[] | null = null;
  #topicsDefault: boolean;
  #memoryAccess: MemoryAccess;

  /** K2K closed until allowed, all topics, read-write. */
  constructor() {
    this.#topicsDefault = true;
    this.#memoryAccess = 'read-write';
  }

  /** For untrusted kernels: no K2K, no topics, read-only, until widened. */
  static restrictive(): SandboxPolicy {
    const p = new SandboxPolicy();
    p.#allow = [];
    p.#topicsDefault = false;
    p.#memoryAccess = 'read-only';
    return p;
  }

  /** For trusted kernels: every destination, every topic, read-write (deny patterns still win). */
  static permissive(): SandboxPolicy {
    const p = new SandboxPolicy();
    p.#allowAll = true;
    return p;
  }

  /** Destinations allowed (adds to the list); all others are refused, even under `permissive()`, until `allowAllK2k()`. */
  k2kAllowList(patterns: readonly string[]): this {
    this.#allow = (this.#allow ?? []).concat(patternList(patterns, 'k2kAllowList'));
    this.#allowAll = false;
    return this;
  }

  /** Destinations refused whatever else allows them (adds to the list). */
  k2kDenyList(patterns: readonly string[]): this {
    this.#deny = this.#deny.concat(patternList(patterns, 'k2kDenyList'));
    return this;
  }

  /** Same as `k2kDenyList`. */
  denyK2kTo(patterns: readonly string[]): this {
    return this.k2kDenyList(patterns);
  }

  /** Every destination not denied (the allow list no longer narrows). */
  allowAllK2k(): this {
    this.#allowAll = true;
    return this;
  }

  /** Topics allowed (adds to the list); once set, other topics are refused. */
  allowTopics(patterns: readonly string[]): this {
    this.#topics = (this.#topics ?? []).concat(patternList(patterns, 'allowTopics'));
    return this;
  }

  memoryAccess(access: MemoryAccess): this {
    if (access !== 'read-only' && access !== 'read-write') {
      throw new TypeError(`Expected 'read-only' or 'read-write' for memoryAccess but received ${describe(access)}`);
    }
    this.#memoryAccess = access;
    return this;
  }

  get readOnly(): boolean {
    return this.#memoryAccess === 'read-only';
  }

  /** May a sandboxed kernel send to a kernel of this name? */
  allowsK2kTo(name: string): boolean {
    if (this.#deny.some((p) => p.test(name))) return false;
    if (this.#allowAll) return true;
    if (this.#allow !== null) return this.#allow.some((p) => p.test(name));
    return this.#deny.length > 0;
  }

  /** May a sandboxed kernel publish on this topic? */
  allowsTopic(name: string): boolean {
    if (this.#topics === null) return this.#topicsDefault;
    return this.#topics.some((p) => p.test(name));
  }

  clone(): SandboxPolicy {
    const p = new SandboxPolicy();
    p.#allowAll = this.#allowAll;
    p.#allow = this.#allow === null ? null : [...this.#allow];
    p.#deny = [...this.#deny];
    p.#topics = this.#topics === null ? null : [...this.#topics];
    p.#topicsDefault = this.#topicsDefault;
    p.#memoryAccess = this.#memoryAccess;
    return p;
  }

  /** A readable summary (patterns as given). */
  toJSON(): Record<string, unknown> {
    return {
      allowAllK2k: this.#allowAll,
      k2kAllowList: this.#allow?.map((p) => p.source) ?? null,
      k2kDenyList: this.#deny.map((p) => p.source),
      allowTopics: this.#topics?.map((p) => p.source) ?? null,
      topicsByDefault: this.#topicsDefault,
      memoryAccess: this.#memoryAccess,
    };
  }
}
