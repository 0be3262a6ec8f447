// The IPC server's fast path for its commonest request line,
//   {"jsonrpc":"2.0","id":7,"method":"gate_check","params":{"car":{...}}}
// (members in any order, any JSON whitespace; params may also hold a
// "nonce", a "permit" and a "session_id"): read straight from the line's
// text to the CAR's canonical bytes and hash, with no JSON.parse and no JS
// objects. Why: parsing the line and writing the CAR's canonical form in JS
// were about a third of the server's time per request.
//
// It takes only lines it can answer exactly as the general path would, and
// says "not mine" (false) for everything else, which the general path then
// answers: other methods or members, a nonce, permit or session_id that is
// not a string of printable ASCII without escapes, ids that
// are not plain integers or plain ASCII strings, duplicate keys anywhere,
// -0, numbers beyond ±(2^53 - 1) or the double range (any number with a
// fraction or exponent where the C++ library lacks floating to_chars), nesting
// deeper than jcs_reader::kMaxDepth (16), lone surrogates, escapes inside action_type
// or agent_id, and anything that is not valid JSON. Whatever it takes, the
// tests hold to byte equality with JSON.parse followed by carHash.
#pragma once
#include <cstddef>
#include <cstdint>


namespace gk {

// Longer lines are left to the general path (they are rare, and it bounds the work).
constexpr size_t kMaxGateLineUnits = 256 * 1024;

// A nonce, permit or session_id span's start and end when the params hold none.
constexpr uint32_t kGateLineAbsent = 0xffffffffu;

// Where the parts the TypeScript side needs lie in the line, as UTF-16 offsets.
struct GateLine {
  uint32_t id_start, id_end;          // the id's JSON text (quotes included for a string)
  uint32_t agent_start, agent_end;    // agent_id's characters
  uint32_t action_start, action_end;  // action_type's characters
  uint32_t nonce_start, nonce_end;    // params.nonce's characters, or kGateLineAbsent
  uint32_t permit_start, permit_end;  // params.permit's characters, or kGateLineAbsent
  uint32_t session_start, session_end;  // params.session_id's characters, or kGateLineAbsent
  uint32_t car_start, car_end;        // params.car's JSON text (what a cache miss parses)
  uint8_t digest[32];                 // SHA-256 of the CAR's canonical form
};

// True when `line` is a request the fast path takes; `out` is then filled in.
bool ParseGateLine(const char16_t* line, size_t len, GateLine* out);

// Lookups of this thread's params memo that found an earlier answer, and
// those that did not (tests).
struct GateLineMemoStats {
  uint64_t hits;
  uint64_t misses;
};
GateLineMemoStats GateLineParamsMemoStats();

}  // namespace gk
