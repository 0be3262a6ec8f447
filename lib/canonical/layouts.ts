/**
 * Key layouts for the canonical writer (lib/canonical/writer.ts).
 *
 * Objects in requests come in a few shapes (the same keys in the same
 * order), so each shape's sorted key order and encoded `{"key":` / `,"key":`
 * prefixes are remembered: later objects of that shape skip sorting and key
 * encoding. A shape is only noted the first time and prepared the second, so
 * objects with ever-new keys cost little. Keyed by the first key; bounded
 * (cleared when full: it only saves work, the output is the same).
 *
 * A shape seen often gets a writer compiled for it: straight-line code that
 * stores its prefixes as constants and reads each value by a literal
 * property name (so V8 caches the property's place instead of searching for
 * it). This writes a CAR about 30% faster than the loop over the prepared
 * layout, and the same bytes: the tests hold both to the string serializer.
 * Key names enter the code only as JSON.stringify literals, which cannot
 * break out of a JS string literal. Compiling costs tens of microseconds, so
 * it happens only on a shape's COMPILE_AFTER-th sighting and at most
 * COMPILE_BUDGET times a second (a flood of new shapes cannot turn into a
 * flood of compiles). Where code generation from strings is disabled
 * (`--disallow-code-generation-from-strings`, some sandboxes), the prepared
 * loop is used.
 */
/**
 * What compiled code calls on the writer it is handed (CanonicalWriter in
 * writer.ts has these members); named here so this file need not import the
 * writer that imports it.
 */
export interface LayoutTarget {
  buf: Uint8Array;
  pos: number;
  /** Non-zero once the walk gave up: compiled code returns at once. */
  stop: number;
  reserve(n: number): boolean;
  byte(b: number): void;
  string(s: string): void;
  value(v: unknown, depth: number): void;
}

/** A compiled writer: `o` has exactly the layout's keys, in its order. */
export type LayoutWriter = (w: LayoutTarget, o: Record<string, unknown>, depth: number) => void;

export interface KeyLayout {
  keys: string[];
  /** null until the shape is seen a second time. */
  sorted: string[] | null;
  prefixes: Uint8Array[] | null;
  /** The compiled writer, once the shape is common enough. */
  write: LayoutWriter | null;
  /** Sightings, counted until the writer is compiled. */
  seen: number;
  /** The keys include `action_type` and `agent_id` (see CanonicalWriter.topHasCarFields). */
  hasCarFields: boolean;
}

const MAX_LAYOUTS = 1024;
const MAX_LAYOUTS_PER_FIRST_KEY = 8;
const MAX_LAYOUT_KEYS = 32;
const COMPILE_AFTER = 8;
const COMPILE_BUDGET = 32;

const layouts = new Map<string, KeyLayout[]>();
let layoutCount = 0;
let codegen = true;
let windowStart = 0;
let compilesInWindow = 0;
let compiles = 0;

/** The prepared layout for `keys` (in Object.keys order), or null (not seen before, or not cacheable). */
export function keyLayout(keys: string[]): KeyLayout | null {
  const n = keys.length;
  if (n > MAX_LAYOUT_KEYS) return null;
  const candidates = layouts.get(keys[0]);
  if (candidates !== undefined) {
    for (let c = 0; c < candidates.length; c++) {
      const layout = candidates[c];
      const known = layout.keys;
      if (known.length !== n) continue;
      let same = true;
      for (let i = 1; i < n; i++) {
        if (known[i] !== keys[i]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      if (layout.prefixes === null) return prepare(layout);
      // Compile on the COMPILE_AFTER-th sighting; retried every 64 after that while the budget is spent.
      if (layout.write === null && codegen && (++layout.seen & 63) === COMPILE_AFTER) compile(layout);
      return layout;
    }
    if (candidates.length >= MAX_LAYOUTS_PER_FIRST_KEY) return null;
  }
  note(keys, candidates);
  return null;
}

/** Whether an object's own enumerable keys include the two a CAR requires. */
export function hasCarFields(keys: readonly string[]): boolean {
  return keys.includes('action_type') && keys.includes('agent_id');
}

function note(keys: string[], candidates: KeyLayout[] | undefined): void {
  if (layoutCount >= MAX_LAYOUTS) {
    layouts.clear();
    layoutCount = 0;
    candidates = undefined;
  }
  const layout: KeyLayout = { keys: keys.slice(), sorted: null, prefixes: null, write: null, seen: 1, hasCarFields: hasCarFields(keys) };
  if (candidates === undefined) layouts.set(keys[0], [layout]);
  else candidates.push(layout);
  layoutCount++;
}

function prepare(layout: KeyLayout): KeyLayout | null {
  const keys = layout.keys;
  for (let i = 0; i < keys.length; i++) if (keys[i].length > 128 || !keys[i].isWellFormed()) return null;
  const sorted = sortKeys(keys.slice());
  // JSON.stringify escapes a well-formed string exactly as JCS does.
  layout.prefixes = sorted.map((k, i) => Buffer.from((i === 0 ? '{' : ',') + JSON.stringify(k) + ':', 'utf8'));
  layout.sorted = sorted;
  layout.seen = 2;
  return layout;
}

function compile(layout: KeyLayout): void {
  if (!takeCompileToken()) return;
  const sorted = layout.sorted!;
  const prefixes = layout.prefixes!;
  let body = "'use strict';\nlet v, b, p;\n";
  for (let i = 0; i < sorted.length; i++) {
    const pre = prefixes[i];
    body += `if (!w.reserve(${pre.length})) return; b = w.buf; p = w.pos;`;
    for (let j = 0; j < pre.length; j++) body += ` b[p + ${j}] = ${pre[j]};`;
    body += ` w.pos = p + ${pre.length};\n`;
    body += `v = o[${JSON.stringify(sorted[i])}]; if (typeof v === 'string') w.string(v); else w.value(v, depth);\n`;
    body += 'if (w.stop !== 0) return;\n';
  }
  body += 'w.byte(125);\n';
  try {
    layout.write = new Function('w', 'o', 'depth', body) as LayoutWriter;
    compiles++;
  } catch {
    codegen = false; // code generation is disabled here: keep to the prepared loop
  }
}

function takeCompileToken(): boolean {
  const now = Date.now();
  if (now - windowStart >= 1000 || now < windowStart) {
    windowStart = now;
    compilesInWindow = 0;
  }
  if (compilesInWindow >= COMPILE_BUDGET) return false;
  compilesInWindow++;
  return true;
}

/**
 * Sorts in place by UTF-16 code units, exactly the JCS key order (as default
 * sort and `<` on strings compare). Request objects have few keys, where an
 * insertion sort is several times faster than Array.prototype.sort.
 */
export function sortKeys(keys: string[]): string[] {
  const n = keys.length;
  if (n > 16) return keys.sort();
  for (let i = 1; i < n; i++) {
    const k = keys[i];
    let j = i - 1;
    while (j >= 0 && keys[j] > k) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** @internal For tests: how many layouts are held and how many writers were compiled (ever). */
export function layoutStats(): { layouts: number; compiled: number; compiles: number; codegen: boolean } {
  let compiled = 0;
  for (const list of layouts.values()) for (const l of list) if (l.write !== null) compiled++;
  return { layouts: layoutCount, compiled, compiles, codegen };
}
