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
  uint32_t agent_start, agent_end, action_start, action_end;
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
  Span id, action, agent;
  const ParamsSlot* known = nullptr;  // the params memo's answer
  size_t params_start = 0, params_end = 0;
  bool seen_jsonrpc = false, seen_id = false, seen_method = false, seen_params = false;
  p.Ws();
  if (!p.Eat('{')) return false;
  for (;;) {
    p.Ws();
    Span key;
    bool escaped = false;
    if (!p.RawString(&key, &escaped) || escaped) return false;
    const char16_t* k = text + key.start;
    size_t kn = key.end - key.start;
    p.Ws();
    if (!p.Eat(':')) return false;
    p.Ws();
    if (Is(k, kn, "jsonrpc")) {
      Span v;
      if (seen_jsonrpc || !p.RawString(&v, &escaped) || escaped || !Is(text + v.start, v.end - v.start, "2.0")) return false;
      seen_jsonrpc = true;
    } else if (Is(k, kn, "id")) {
      if (seen_id || !p.Id(&id)) return false;
      seen_id = true;
    } else if (Is(k, kn, "method")) {
      Span v;
      if (seen_method || !p.RawString(&v, &escaped) || escaped || !Is(text + v.start, v.end - v.start, "gate_check")) return false;
      seen_method = true;
    } else if (Is(k, kn, "params")) {
      if (seen_params) return false;
      params_start = p.pos();
      if (p.SkipObject(kMaxMemoUnits)) {
        params_end = p.pos();
        known = FindParams(text + params_start, params_end - params_start);
      }
      if (known != nullptr) {
        action = {params_start + known->action_start, params_start + known->action_end};
        agent = {params_start + known->agent_start, params_start + known->agent_end};
        seen_params = true;
        p.Ws();
        if (p.Eat(',')) continue;
        if (p.Eat('}')) break;
        return false;
      }
      p.SetPos(params_start);
      // Exactly {"car": {...}}: other params (permit, nonce, session_id) take the general path.
      if (!p.Eat('{')) return false;
      p.Ws();
      Span car_key;
      if (!p.RawString(&car_key, &escaped) || escaped || !Is(text + car_key.start, car_key.end - car_key.start, "car")) return false;
      p.Ws();
      if (!p.Eat(':')) return false;
      p.Ws();
      if (!p.Car(&canonical, &action, &agent)) return false;
      p.Ws();
      if (!p.Eat('}')) return false;
      if (p.pos() != params_end) params_end = params_start;  // (cannot differ; never remember if it did)
      seen_params = true;
    } else {
      return false;
    }
    p.Ws();
    if (p.Eat(',')) continue;
    if (p.Eat('}')) break;
    return false;
  }
  p.Ws();
  if (!p.AtEnd() || !(seen_jsonrpc && seen_id && seen_method && seen_params)) return false;
  *out = {uint32_t(id.start), uint32_t(id.end), uint32_t(agent.start), uint32_t(agent.end), uint32_t(action.start), uint32_t(action.end), {}};
  if (known != nullptr) {
    std::memcpy(out->digest, known->digest, kSha256DigestBytes);
    return true;
  }
  CarFormDigest(canonical.data(), canonical.size(), out->digest);
  // params_end is set when the text was short enough for the memo.
  if (params_end > params_start) RememberParams(text + params_start, params_end - params_start, *out, params_start);
  return true;
}

GateLineMemoStats GateLineParamsMemoStats() {
  ParamsMemo& memo = ParamsMemo::ForThisThread();
  return {memo.hits, memo.misses};
}


}  // namespace gk
