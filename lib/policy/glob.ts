/**
 * One glob dialect for identities, action types and resource paths:
 *   `**`  any characters, `/` included
 *   `*`   any characters except `/`
 *   `?`   one character except `/`
 *   `\x`  the character x itself (so `\*` is a literal star)
 * Everything else is literal: `.` is a dot, not "any character". Matching is
 * on the whole string, case-sensitive, with no normalization; a "character"
 * is one UTF-16 code unit.
 *
 * Names (agent ids, action types) are not paths: `compileNameGlob` reads the
 * same syntax but its `*`, `**` and `?` cross `/` too, so a deny list entry
 * `agent-evil*` also covers `agent-evil/2`.
 *
 * Matching never backtracks. A pattern is a literal prefix, a literal suffix
 * (plain string compares) and a middle that starts and ends with a wildcard.
 * A middle of one wildcard is a length check or one scan for `/`; any other
 * middle runs as a bit-parallel NFA over the pattern's positions (Shift-And
 * with self-loops for stars): one pass over the value, ceil((k+1)/32) word
 * operations per character for k middle tokens. Work is therefore at most
 * O(value x pattern / 32) and linear in the value for a fixed pattern.
 */
import { describe } from '../errors';

export interface CompiledGlob {
  readonly source: string;
  test(value: string): boolean;
}

const MAX_PATTERN = 1024;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const STAR = 0x2a;
const QUESTION = 0x3f;

// Token kinds of the middle part.
const LIT = 0;
const ONE = 1; // `?`
const SEG_STAR = 2; // `*` of the path dialect: stops at `/`
const ANY_STAR = 3; // `**`, or any star of the name dialect

let steps = 0;

/**
 * Work done by every matcher since the last reset: characters examined by
 * the literal compares and scans, and bit-words updated per character by the
 * NFA. For tests that bound the matcher's work; not a timer.
 */
export function matchSteps(): number {
  return steps;
}

export function resetMatchSteps(): void {
  steps = 0;
}

/** Compiles a path glob; throws a RangeError naming the problem for an invalid one. */
export function compileGlob(pattern: string): CompiledGlob {
  return compile(pattern, false);
}

/** Compiles a name glob (identities, action types): wildcards match `/` as well. */
export function compileNameGlob(pattern: string): CompiledGlob {
  return compile(pattern, true);
}

/** True when `pattern` has a wildcard or an escape (else it is an exact name). */
export function isGlobPattern(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    if (c === STAR || c === QUESTION || c === BACKSLASH) return true;
  }
  return false;
}

function compile(pattern: string, crossSlash: boolean): CompiledGlob {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN) {
    throw new RangeError(`Expected a non-empty glob of at most ${MAX_PATTERN} characters but received ${describe(pattern)}`);
  }
  const kinds: number[] = [];
  const codes: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    if (c === BACKSLASH) {
      if (i + 1 >= pattern.length) throw new RangeError(`Glob "${pattern}" ends with a lone backslash`);
      kinds.push(LIT);
      codes.push(pattern.charCodeAt(++i));
    } else if (c === STAR) {
      let kind = crossSlash ? ANY_STAR : SEG_STAR;
      if (pattern.charCodeAt(i + 1) === STAR) {
        kind = ANY_STAR;
        while (pattern.charCodeAt(i + 1) === STAR) i++; // *** is **
      }
      kinds.push(kind);
      codes.push(0);
    } else if (c === QUESTION) {
      kinds.push(ONE);
      codes.push(0);
    } else {
      kinds.push(LIT);
      codes.push(c);
    }
  }
  let first = 0;
  while (first < kinds.length && kinds[first] === LIT) first++;
  if (first === kinds.length) {
    const literal = codes.length === pattern.length ? pattern : String.fromCharCode(...codes); // the pattern itself when it has no escapes
    return {
      source: pattern,
      test: (v) => {
        steps += literal.length;
        return v === literal;
      },
    };
  }
  let last = kinds.length - 1;
  while (kinds[last] === LIT) last--;
  const prefix = String.fromCharCode(...codes.slice(0, first));
  const suffix = String.fromCharCode(...codes.slice(last + 1));
  const fixed = prefix.length + suffix.length;
  const pl = prefix.length;
  const sl = suffix.length;
  // Both literal ends in place. Inlined in each shape below: a shared helper
  // closure made every call site polymorphic.
  const kind = kinds[first];
  if (first === last && kind === ANY_STAR) {
    // `/srv/data/**`, `agent-*` (names): the ends are the whole test.
    return {
      source: pattern,
      test: (v) => {
        steps += fixed;
        return v.length >= fixed && (pl === 0 || v.startsWith(prefix)) && (sl === 0 || v.endsWith(suffix));
      },
    };
  }
  if (first === last && kind === SEG_STAR) {
    // `/srv/data/*`, `*.txt`: and no `/` between the ends.
    return {
      source: pattern,
      test: (v) => {
        steps += v.length;
        if (v.length < fixed || (pl !== 0 && !v.startsWith(prefix)) || (sl !== 0 && !v.endsWith(suffix))) return false;
        const slash = v.indexOf('/', pl);
        return slash < 0 || slash >= v.length - sl;
      },
    };
  }
  if (first === last) {
    // `a?c`: one character between the ends.
    return {
      source: pattern,
      test: (v) => {
        steps += fixed + 1;
        return v.length === fixed + 1 && v.startsWith(prefix) && v.endsWith(suffix) && (crossSlash || v.charCodeAt(pl) !== SLASH);
      },
    };
  }
  const nfa = buildNfa(kinds.slice(first, last + 1), codes.slice(first, last + 1), crossSlash);
  return {
    source: pattern,
    test: (v) => {
      steps += fixed;
      if (v.length < fixed || (pl !== 0 && !v.startsWith(prefix)) || (sl !== 0 && !v.endsWith(suffix))) return false;
      return nfa(v, pl, v.length - sl);
    },
  };
}

type Run = (v: string, start: number, end: number) => boolean;

/**
 * The middle tokens as an NFA with states 0..k (state j: j tokens matched),
 * one bit per state. Per character class c: ADV has bit j for each non-star
 * token j that consumes c (then shifted to j+1), STAY has bit j+1 for each
 * star token j that absorbs c (its self-loop), and EPS has bit j for each
 * star token j (an empty star: j reaches j+1 without input). No two stars are
 * adjacent after parsing, so one EPS step closes the set.
 */
function buildNfa(kinds: number[], codes: number[], crossSlash: boolean): Run {
  const k = kinds.length;
  const W = (k + 1 + 31) >>> 5;
  // Character classes: 0 = any other character, then `/`, then each literal character.
  const ascii = new Uint16Array(128);
  const wide = new Map<number, number>();
  const classCodes: number[] = [-1];
  const classOf = (code: number): number => (code < 128 ? ascii[code] : (wide.get(code) ?? 0));
  const addClass = (code: number): void => {
    if (classOf(code) !== 0) return;
    const id = classCodes.length;
    classCodes.push(code);
    if (code < 128) ascii[code] = id;
    else wide.set(code, id);
  };
  addClass(SLASH);
  for (let j = 0; j < k; j++) if (kinds[j] === LIT) addClass(codes[j]);
  const classes = classCodes.length;
  const adv = new Int32Array(classes * W);
  const stay = new Int32Array(classes * W);
  const eps = new Int32Array(W);
  const set = (a: Int32Array, base: number, bit: number): void => {
    a[base + (bit >>> 5)] |= 1 << (bit & 31);
  };
  for (let j = 0; j < k; j++) {
    const kind = kinds[j];
    if (kind === SEG_STAR || kind === ANY_STAR) set(eps, 0, j);
    for (let c = 0; c < classes; c++) {
      const code = classCodes[c];
      const slash = code === SLASH;
      if (kind === LIT ? code === codes[j] : kind === ONE ? crossSlash || !slash : false) set(adv, c * W, j);
      if (kind === ANY_STAR || (kind === SEG_STAR && !slash)) set(stay, c * W, j + 1);
    }
  }
  // State 0 closed under EPS: the middle always starts with a wildcard.
  const init = new Int32Array(W);
  init[0] = 1;
  if (eps[0] & 1) init[0] |= 2;
  const acceptWord = k >>> 5;
  const acceptBit = 1 << (k & 31);

  if (W === 1) {
    const e = eps[0];
    const i0 = init[0];
    return (v, start, end) => {
      let d = i0;
      for (let i = start; i < end; i++) {
        const code = v.charCodeAt(i);
        const c = code < 128 ? ascii[code] : (wide.get(code) ?? 0);
        d = ((d & adv[c]) << 1) | (d & stay[c]);
        d |= (d & e) << 1;
        if (d === 0) {
          steps += i - start + 1;
          return false;
        }
      }
      steps += end - start;
      return (d & acceptBit) !== 0;
    };
  }

  // Scratch state, reused: test() runs to completion and never re-enters.
  const D = new Int32Array(W);
  return (v, start, end) => {
    D.set(init);
    for (let i = start; i < end; i++) {
      const code = v.charCodeAt(i);
      const base = (code < 128 ? ascii[code] : (wide.get(code) ?? 0)) * W;
      let carry = 0;
      let ecarry = 0;
      let any = 0;
      for (let w = 0; w < W; w++) {
        const d = D[w];
        const a = d & adv[base + w];
        let nd = (a << 1) | carry | (d & stay[base + w]) | ecarry;
        carry = a >>> 31;
        const x = nd & eps[w];
        nd |= x << 1;
        ecarry = x >>> 31;
        D[w] = nd;
        any |= nd;
      }
      if (any === 0) {
        steps += (i - start + 1) * W;
        return false;
      }
    }
    steps += (end - start) * W;
    return (D[acceptWord] & acceptBit) !== 0;
  };
}
