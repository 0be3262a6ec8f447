/**
 * A policy's source text: the YAML options every policy parse uses, a bound
 * on nesting checked before the YAML composer runs (it recurses per level),
 * and, for `guardkernel policy check`, the way from an error's dotted path
 * back to a line and column in the file, and "did you mean" for a misspelled
 * field name (the known names come from the schema itself).
 */
import YAML, { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, type Pair } from 'yaml';
import { POLICY_SCHEMA } from './policy-schema';

/** Options of every parse of policy text: duplicate keys are errors, aliases bounded, strict YAML 1.2. */
export const POLICY_YAML_OPTIONS = { uniqueKeys: true, maxAliasCount: 100, strict: true } as const;

/** Flow collections (`[`, `{`) open at once, at most. */
export const MAX_FLOW_DEPTH = 64;
/** Columns of indentation and block indicators (`- `, `? `, `: `) a line may start with, at most. */
export const MAX_INDENT = 256;

/** Thrown by `checkNesting`: where the limit was passed, as the yaml package's errors say it ([start, end) offsets). */
export class NestingError extends Error {
  constructor(
    message: string,
    readonly pos: [number, number],
  ) {
    super(message);
    this.name = 'NestingError';
  }
}

/**
 * Refuses text nested deeper than any policy needs, before it reaches the
 * YAML composer, whose recursion ends in a stack overflow (or, inside V8's
 * regex compiler, a fatal out-of-memory abort) some 800 levels down. One pass
 * of the yaml lexer (no recursion), stopping at the first excess: the depth
 * of open flow collections, and a line's indentation plus block indicators
 * (each block level needs at least one more column, so this bounds block
 * depth). Scalars, block scalars included, are skipped whole.
 */
export function checkNesting(text: string): void {
  let flow = 0;
  let lineStart = true;
  let column = 0;
  let offset = 0;
  let indicators = 0;
  let skipScalarSource = false;
  for (const token of new YAML.Lexer().lex(text)) {
    const at = offset;
    // Lexer markers (one character below U+0020) are not source text; every other token is.
    if (!(token.length === 1 && token < ' ' && token !== '\t' && token !== '\n')) offset += token.length;
    if (skipScalarSource) {
      skipScalarSource = false;
      lineStart = token.endsWith('\n'); // a block scalar's source takes its last line break
      column = 0;
      indicators = 0;
      continue;
    }
    if (token === '\x1f') {
      skipScalarSource = true; // the next token is the scalar's source
      continue;
    }
    const type = YAML.CST.tokenType(token);
    if (type === 'newline') {
      lineStart = true;
      column = 0;
      indicators = 0;
      continue;
    }
    if (type === 'flow-map-start' || type === 'flow-seq-start') {
      if (++flow > MAX_FLOW_DEPTH) throw new NestingError(`nested deeper than ${MAX_FLOW_DEPTH} flow collections ([ or {)`, [at, at + 1]);
    } else if ((type === 'flow-map-end' || type === 'flow-seq-end') && flow > 0) flow--;
    const indicator = type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind';
    if (indicator) {
      // `- - - x` nests without new lines: a run of indicators is bounded wherever it stands.
      if (++indicators > MAX_FLOW_DEPTH) throw new NestingError(`nested deeper than ${MAX_FLOW_DEPTH} block indicators (- ? :) in a row`, [at, at + 1]);
    } else if (type !== 'space') indicators = 0;
    if (lineStart) {
      if (type === 'space') column += token.length;
      else if (indicator) column += 1;
      else lineStart = false;
      if (column > MAX_INDENT) throw new NestingError(`indented or nested deeper than ${MAX_INDENT} columns`, [at, at + token.length]);
    }
  }
}

/**
 * The document as a tree with source ranges, parsed with the same options as
 * `PolicyEngine.parse` (after the same nesting check). Never converted to
 * plain values here: aliases stay unexpanded, so no alias bomb grows.
 */
export function parseWithPositions(text: string): { doc: Document.Parsed; lines: LineCounter } {
  checkNesting(text);
  const lines = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { ...POLICY_YAML_OPTIONS, lineCounter: lines, keepSourceTokens: false, prettyErrors: false });
  return { doc, lines };
}

export interface Located {
  /** The document's keys (and array indexes) along the path, as far as they were found. */
  segments: string[];
  /** True when the whole path was found. */
  complete: boolean;
  /** Source range [start, end) of the last key found (undefined for an array item or the root). */
  keyRange?: [number, number];
  /** Source range of the value at the deepest point found. */
  valueRange?: [number, number];
}

/** At most this many steps in the search for a dotted path (keys may contain dots, so it can branch). */
const LOCATE_BUDGET = 10_000;
/** Paths longer than this are not looked for. */
const MAX_PATH_LENGTH = 4096;

function rangeOf(node: unknown): [number, number] | undefined {
  const r = (node as Node | null)?.range;
  return r ? [r[0], r[1]] : undefined;
}

/**
 * Finds the node a dotted error path (`actions.file_read.constraints.args.mode.glob`)
 * names. Keys may contain dots, so each step tries every key of the map that
 * is the next part of the path; the deepest match wins. Aliases are followed
 * one node at a time (never expanded). Bounded by LOCATE_BUDGET steps.
 */
export function locatePath(doc: Document.Parsed, path: string): Located {
  const root = doc.contents;
  let best: Located = { segments: [], complete: false, valueRange: rangeOf(root) };
  if (path === '' || path.length > MAX_PATH_LENGTH) return { ...best, complete: path === '' };
  let budget = LOCATE_BUDGET;
  const resolve = (n: unknown): unknown => {
    for (let hops = 0; isAlias(n) && hops < 100; hops++) n = n.resolve(doc);
    return n;
  };
  const search = (node: unknown, rest: string, segments: string[], keyRange: [number, number] | undefined): boolean => {
    if (--budget < 0) return false;
    const here: Located = { segments, complete: rest === '', keyRange, valueRange: rangeOf(node) };
    if (segments.length > best.segments.length || here.complete) best = here;
    if (rest === '') return true;
    const n = resolve(node);
    if (isMap(n)) {
      for (const pair of n.items as Pair[]) {
        const k = isScalar(pair.key) ? pair.key.value : undefined;
        if (typeof k !== 'string' && typeof k !== 'number') continue;
        const key = String(k);
        if (rest === key || (rest.startsWith(key) && rest.charCodeAt(key.length) === 0x2e)) {
          if (search(pair.value, rest.slice(key.length + 1), [...segments, key], rangeOf(pair.key))) return true;
        }
      }
    } else if (isSeq(n)) {
      const m = /^(0|[1-9][0-9]{0,8})(?:\.|$)/.exec(rest);
      if (m !== null && Number(m[1]) < n.items.length) {
        return search(n.items[Number(m[1])], rest.slice(m[0].length), [...segments, m[1]], undefined);
      }
    }
    return false;
  };
  search(root, path, [], undefined);
  return best;
}

type SchemaNode = { properties?: Record<string, unknown>; additionalProperties?: unknown; items?: unknown; enum?: readonly unknown[] };

/** The schema of the value at `segments` (document keys), or undefined. */
export function schemaAt(segments: readonly string[]): SchemaNode | undefined {
  let s: SchemaNode | undefined = POLICY_SCHEMA as unknown as SchemaNode;
  for (const seg of segments) {
    if (s === undefined) return undefined;
    if (s.properties !== undefined && Object.hasOwn(s.properties, seg)) s = s.properties[seg] as SchemaNode;
    else if (typeof s.additionalProperties === 'object' && s.additionalProperties !== null) s = s.additionalProperties as SchemaNode;
    else if (s.items !== undefined && /^[0-9]+$/.test(seg)) s = s.items as SchemaNode;
    else return undefined;
  }
  return s;
}

/** The field names the schema knows in the object at `segments` (document keys). */
export function knownFields(segments: readonly string[]): string[] {
  const s = schemaAt(segments);
  return s?.properties === undefined ? [] : Object.keys(s.properties);
}

/** Names longer than this are never compared (a hostile key could be a megabyte long). */
export const MAX_SUGGEST_LENGTH = 64;

/**
 * Optimal string alignment distance (Damerau-Levenshtein with adjacent
 * transpositions), O(a·b) time; only called on names of at most
 * MAX_SUGGEST_LENGTH characters.
 */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  for (let i = 1; i <= n; i++) {
    const cur = new Array<number>(m + 1);
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[m];
}

/**
 * The candidate closest to `word`, when it is close enough to be a typo (at
 * most a third of the longer name's characters differ, and at least one
 * character stays); undefined otherwise, and for names over MAX_SUGGEST_LENGTH.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  if (word.length === 0 || word.length > MAX_SUGGEST_LENGTH) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const c of candidates) {
    if (c.length > MAX_SUGGEST_LENGTH || c === word) continue;
    const d = editDistance(lower, c.toLowerCase());
    const limit = Math.max(1, Math.floor(Math.max(word.length, c.length) / 3));
    if (d <= limit && d < Math.max(word.length, c.length) && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
