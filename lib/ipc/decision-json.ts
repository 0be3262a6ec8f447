/**
 * The JSON text of a gate decision, built directly.
 *
 * Why: `gate_check` answers one decision per request, and JSON.stringify of
 * the reply cost about as much as the gate's own cache hit. A decision has
 * a fixed shape (lib/gate/pipeline.ts builds every one with the same keys in
 * the same order), so its text is constant pieces around its values. The
 * result is exactly `JSON.stringify(decision)` (the tests hold the two to
 * byte equality); anything off the shape takes JSON.stringify itself.
 */
import type { GateDecision } from '../gate/decision';

// Characters JSON.stringify escapes: '"', '\\', controls, and surrogates (lone ones become \uXXXX).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const KEYS = ['decision', 'source', 'reason', 'car_hash', 'policy_version', 'trust_score', 'confidence'];

const quote = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"');
// Decisions and sources come from small fixed sets (lib/gate/pipeline.ts):
// their JSON is known, and a Map lookup of a constant string is cheaper than the escape scan.
const KNOWN = new Map(['allow', 'deny', 'pending', 'validation', 'quarantine', 'velocity', 'replay', 'permit', 'cache', 'policy', 'approval', 'error'].map((s) => [s, JSON.stringify(s)]));
const quoteKnown = (s: string): string => KNOWN.get(s) ?? quote(s);

function hasDecisionShape(d: GateDecision): boolean {
  const keys = Object.keys(d);
  if (keys.length !== 7 && !(keys.length === 8 && keys[7] === 'retry_after_ms')) return false;
  for (let i = 0; i < 7; i++) if (keys[i] !== KEYS[i]) return false;
  return (
    typeof d.decision === 'string' &&
    typeof d.source === 'string' &&
    typeof d.reason === 'string' &&
    (typeof d.car_hash === 'string' || d.car_hash === null) &&
    Number.isFinite(d.policy_version) &&
    Number.isFinite(d.trust_score) &&
    Number.isFinite(d.confidence) &&
    (d.retry_after_ms === undefined || Number.isFinite(d.retry_after_ms))
  );
}

/**
 * The text last made for each recent CAR hash, with the values it was made
 * from. Cached decisions repeat exactly (the same verdict, reason, version
 * and, mostly, trust), and a reused text is one flat string: building it
 * again from its fifteen pieces, and flattening that rope when the reply is
 * written, cost more than the gate's cache hit. Used only when every value
 * is equal, so the text is always what the pieces would give. Bounded: the
 * table starts over when full.
 */
interface Made {
  decision: string;
  source: string;
  reason: string;
  policy_version: number;
  trust_score: number;
  confidence: number;
  text: string;
}
const MADE_LIMIT = 4096;
const made = new Map<string, Made>();

/**
 * The table pays only where decisions repeat. On mixed traffic (half the
 * lookups found a text) its inserts cost more than its hits saved (serve
 * answered ~8% more requests a second without it): each kept text outlives
 * a young-generation collection and is copied, then promoted, then dropped
 * when the table starts over. So it watches itself: over each window of
 * WINDOW lookups, fewer than MIN_HITS hits pauses it (emptied) for PAUSE
 * decisions, then it tries again. Only which texts are reused changes; every
 * text is the same either way.
 */
const WINDOW = 1024;
const MIN_HITS = (WINDOW * 3) / 4;
const PAUSE = 16 * WINDOW;
let windowLeft = WINDOW;
let windowHits = 0;
let paused = 0;

/** Counts one lookup (a hit or not); at the end of a window with too few hits, pauses the table. */
function tick(hit: boolean): void {
  if (hit) windowHits++;
  if (--windowLeft > 0) return;
  if (windowHits < MIN_HITS) {
    paused = PAUSE;
    made.clear();
  }
  windowLeft = WINDOW;
  windowHits = 0;
}

/** `JSON.stringify(d)` for a gate decision. */
export function decisionJson(d: GateDecision): string {
  if (!hasDecisionShape(d)) return JSON.stringify(d);
  const hash = d.car_hash;
  let memo = hash !== null && d.retry_after_ms === undefined;
  if (memo && paused > 0) {
    paused--;
    memo = false;
  }
  if (memo) {
    const m = made.get(hash!);
    const hit = m !== undefined && m.decision === d.decision && m.source === d.source && m.reason === d.reason && m.policy_version === d.policy_version && m.trust_score === d.trust_score && m.confidence === d.confidence;
    tick(hit);
    if (hit) return m!.text;
  }
  let text =
    '{"decision":' + quoteKnown(d.decision) +
    ',"source":' + quoteKnown(d.source) +
    ',"reason":' + quote(d.reason) +
    ',"car_hash":' + (d.car_hash === null ? 'null' : quote(d.car_hash)) +
    ',"policy_version":' + num(d.policy_version) +
    ',"trust_score":' + num(d.trust_score) +
    ',"confidence":' + num(d.confidence);
  if (d.retry_after_ms !== undefined) text += ',"retry_after_ms":' + num(d.retry_after_ms);
  text += '}';
  if (memo && paused === 0) {
    if (made.size >= MADE_LIMIT) made.clear();
    made.set(hash!, { decision: d.decision, source: d.source, reason: d.reason, policy_version: d.policy_version, trust_score: d.trust_score, confidence: d.confidence, text });
  }
  return text;
}

const num = (n: number): string => '' + n; // finite: as JSON.stringify prints it (-0 too)

/** @internal For tests: texts held, and decisions left before a paused table tries again. */
export function decisionTextMemo(): { size: number; paused: number } {
  return { size: made.size, paused };
}
