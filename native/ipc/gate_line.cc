#include "ipc/gate_line.h"

#include <cstring>
#include <vector>

#include "byte_sink.h"
#include "hash/form_memo.h"
#include "jcs/jcs_reader.h"
#include "hash/seeded_hash.h"
#include "hash/sha256.h"
#include "hash/two_way_memo.h"

namespace gk {
namespace {

using jcs_reader::Is;
using jcs_reader::Level;
using jcs_reader::Parser;
using jcs_reader::Span;

// What recent params texts gave: the CAR's digest and where action_type and
// agent_id lie, relative to the text. Pipelined clients send the same CAR
// again and again with new ids, and finding the earlier answer costs a keyed
// hash and a compare instead of reading the CAR to its canonical form. An
// answer is used only for exactly the same text (length and memcmp), which
// can only give what reading it gave; a placement collision is a miss.
// Per thread, bounded (kParamsSets x 2 slots of at most kMaxMemoUnits units).
constexpr size_t kParamsSets = 128;
constexpr size_t kMaxMemoUnits = 256;
constexpr uint32_t kEmptySlot = 0xffffffffu;

struct ParamsSlot {
  uint32_t len = kEmptySlot;
  uint32_t agent_start, agent_end, action_start, action_end, car_start, car_end;
  uint8_t digest[kSha256DigestBytes];
  char16_t units[kMaxMemoUnits];
};

using ParamsMemo = TwoWayMemo<ParamsSlot, kParamsSets>;

size_t ParamsSet(const char16_t* units, size_t n) {
  return SeededBytesHash(reinterpret_cast<const uint8_t*>(units), n * sizeof(char16_t)) % kParamsSets;
}

const ParamsSlot* FindParams(const char16_t* units, size_t n) {
  ParamsMemo& memo = ParamsMemo::ForThisThread();
  ParamsSlot* set = memo.slots[ParamsSet(units, n)];
  for (int way = 0; way < 2; way++) {
    if (set[way].len == n && std::memcmp(set[way].units, units, n * sizeof(char16_t)) == 0) {
      memo.hits++;
      return &set[way];
    }
  }
  memo.misses++;
  return nullptr;
}

void RememberParams(const char16_t* units, size_t n, const GateLine& line, size_t start) {
  ParamsMemo& memo = ParamsMemo::ForThisThread();
  ParamsSlot& slot = memo.Replace(ParamsSet(units, n));
  slot.len = uint32_t(n);
  std::memcpy(slot.units, units, n * sizeof(char16_t));
  std::memcpy(slot.digest, line.digest, kSha256DigestBytes);
  slot.agent_start = uint32_t(line.agent_start - start);
  slot.agent_end = uint32_t(line.agent_end - start);
  slot.action_start = uint32_t(line.action_start - start);
  slot.action_end = uint32_t(line.action_end - start);
  slot.car_start = uint32_t(line.car_start - start);
  slot.car_end = uint32_t(line.car_end - start);
}

// Marks a nonce, permit or session_id the params do not hold.
constexpr Span kNoSpan = {kGateLineAbsent, kGateLineAbsent};

// Reads `"key" :` and the whitespace around it; false for an escaped key
// (the general path's) or bad syntax.
bool MemberKey(Parser& p, Span* key) {
  bool escaped = false;
  p.Ws();
  if (!p.RawString(key, &escaped) || escaped) return false;
  p.Ws();
  if (!p.Eat(':')) return false;
  p.Ws();
  return true;
}

// What follows an object member's value.
enum class After { kMore, kEnd, kBad };
After AfterMember(Parser& p) {
  p.Ws();
  if (p.Eat(',')) return After::kMore;
  if (p.Eat('}')) return After::kEnd;
  return After::kBad;
}

// A string value that is exactly `word`, written without escapes.
template <size_t N>
bool PlainWord(Parser& p, const char16_t* text, const char (&word)[N]) {
  Span v;
  bool escaped = false;
  return p.RawString(&v, &escaped) && !escaped && Is(text + v.start, v.end - v.start, word);
}

// A nonce, permit or session_id value: a string of printable ASCII without
// escapes, at most once (its span is kNoSpan until read).
bool OptionalString(Parser& p, Span* span) {
  return span->start == kGateLineAbsent && p.PlainAsciiString(span);
}

// What the params object gave: where its parts lie in the line, and the
// memo's answer if its text was read before.
struct ParamsParts {
  Span action, agent, car;
  Span nonce = kNoSpan, permit = kNoSpan, session = kNoSpan;
  // A memo slot holds none of these, so params with one are never remembered.
  bool HoldsOptional() const {
    return nonce.start != kGateLineAbsent || permit.start != kGateLineAbsent || session.start != kGateLineAbsent;
  }
  const ParamsSlot* known = nullptr;
  // The params text; end == start when it is not one for the memo.
  size_t start = 0, end = 0;
};

// The params object at the cursor: {"car": {...}} with, in any order, a
// "nonce", a "permit" and a "session_id" of printable ASCII without escapes
// (their text in the line is then their value); anything else, or one of
// those written otherwise, takes the general path. A text the memo knows is
// not read again.
bool ReadParams(Parser& p, const char16_t* text, ByteSink* canonical, ParamsParts* r) {
  r->start = p.pos();
  if (p.SkipObject(kMaxMemoUnits)) {
    r->end = p.pos();
    r->known = FindParams(text + r->start, r->end - r->start);
    if (r->known != nullptr) {
      const ParamsSlot& k = *r->known;
      r->action = {r->start + k.action_start, r->start + k.action_end};
      r->agent = {r->start + k.agent_start, r->start + k.agent_end};
      r->car = {r->start + k.car_start, r->start + k.car_end};
      return true;  // the cursor is past the params
    }
  }
  p.SetPos(r->start);
  if (!p.Eat('{')) return false;
  bool seen_car = false;
  for (;;) {
    Span key;
    if (!MemberKey(p, &key)) return false;
    const char16_t* k = text + key.start;
    size_t kn = key.end - key.start;
    if (Is(k, kn, "car")) {
      r->car.start = p.pos();
      if (seen_car || !p.Car(canonical, &r->action, &r->agent)) return false;
      r->car.end = p.pos();
      seen_car = true;
    } else if (Is(k, kn, "nonce")) {
      if (!OptionalString(p, &r->nonce)) return false;
    } else if (Is(k, kn, "permit")) {
      if (!OptionalString(p, &r->permit)) return false;
    } else if (Is(k, kn, "session_id")) {
      if (!OptionalString(p, &r->session)) return false;
    } else {
      return false;
    }
    After next = AfterMember(p);
    if (next == After::kBad) return false;
    if (next == After::kEnd) break;
  }
  if (!seen_car) return false;
  // Only params of a CAR alone are remembered: a nonce is new on every
  // request, and a memo slot holds no nonce, permit or session_id (a memo
  // answer carries none). (p.pos() != end cannot happen; never remember if
  // it did.)
  if (p.pos() != r->end || r->HoldsOptional()) r->end = r->start;
  return true;
}

std::vector<Level>& Levels() {
  thread_local std::vector<Level> levels(jcs_reader::kMaxDepth + 2);
  return levels;
}

}  // namespace


bool ParseGateLine(const char16_t* text, size_t len, GateLine* out) {
  if (len > kMaxGateLineUnits) return false;
  thread_local ByteSink canonical;
  canonical.Clear();
  Parser p(text, len, Levels());
  Span id;
  ParamsParts params;
  bool seen_jsonrpc = false, seen_id = false, seen_method = false, seen_params = false;
  p.Ws();
  if (!p.Eat('{')) return false;
  for (;;) {
    Span key;
    if (!MemberKey(p, &key)) return false;
    const char16_t* k = text + key.start;
    size_t kn = key.end - key.start;
    if (Is(k, kn, "jsonrpc")) {
      if (seen_jsonrpc || !PlainWord(p, text, "2.0")) return false;
      seen_jsonrpc = true;
    } else if (Is(k, kn, "id")) {
      if (seen_id || !p.Id(&id)) return false;
      seen_id = true;
    } else if (Is(k, kn, "method")) {
      if (seen_method || !PlainWord(p, text, "gate_check")) return false;
      seen_method = true;
    } else if (Is(k, kn, "params")) {
      if (seen_params || !ReadParams(p, text, &canonical, &params)) return false;
      seen_params = true;
    } else {
      return false;
    }
    After next = AfterMember(p);
    if (next == After::kBad) return false;
    if (next == After::kEnd) break;
  }
  p.Ws();
  if (!p.AtEnd() || !(seen_jsonrpc && seen_id && seen_method && seen_params)) return false;
  const ParamsParts& r = params;
  *out = {uint32_t(id.start), uint32_t(id.end), uint32_t(r.agent.start), uint32_t(r.agent.end), uint32_t(r.action.start), uint32_t(r.action.end),
          uint32_t(r.nonce.start), uint32_t(r.nonce.end), uint32_t(r.permit.start), uint32_t(r.permit.end),
          uint32_t(r.session.start), uint32_t(r.session.end), uint32_t(r.car.start), uint32_t(r.car.end), {}};
  if (r.known != nullptr) {
    std::memcpy(out->digest, r.known->digest, kSha256DigestBytes);
    return true;
  }
  CarFormDigest(canonical.data(), canonical.size(), out->digest);
  // end is past start when the text is one for the memo.
  if (r.end > r.start) RememberParams(text + r.start, r.end - r.start, *out, r.start);
  return true;
}

GateLineMemoStats GateLineParamsMemoStats() {
  ParamsMemo& memo = ParamsMemo::ForThisThread();
  return {memo.hits, memo.misses};
}


}  // namespace gk
