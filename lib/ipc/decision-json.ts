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
import { MemoPause } from '../memo-pause';

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
 * when the table starts over. So a window of 1,024 lookups with fewer than
 * 3 in 4 hits pauses it, emptied, for 16,384 decisions (lib/memo-pause.ts).
 * Only which texts are reused changes; every text is the same either way.
 */
const pause = new MemoPause(1024, 768, 16 * 1024);

/** `JSON.stringify(d)` for a gate decision. */
export function decisionJson(d: GateDecision): string {
  if (!hasDecisionShape(d)) return JSON.stringify(d);
  const hash = d.car_hash;
  let memo = hash !== null && d.retry_after_ms === undefined && !pause.skip();
  if (memo) {
    const m = made.get(hash!);
    const hit = m !== undefined && m.decision === d.decision && m.source === d.source && m.reason === d.reason && m.policy_version === d.policy_version && m.trust_score === d.trust_score && m.confidence === d.confidence;
    if (pause.note(hit)) {
      made.clear();
      memo = false;
    }
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
  if (memo) {
    if (made.size >= MADE_LIMIT) made.clear();
    made.set(hash!, { decision: d.decision, source: d.source, reason: d.reason, policy_version: d.policy_version, trust_score: d.trust_score, confidence: d.confidence, text });
  }
  return text;
}

const num = (n: number): string => '' + n; // finite: as JSON.stringify prints it (-0 too)

/** @internal For tests: texts held, and decisions left before a paused table tries again. */
export function decisionTextMemo(): { size: number; paused: number } {
  return { size: made.size, paused: pause.paused };
}
