// The audit log's record of a gate decision, written and sealed in one call.
//
// Why: the gate appends one record per decision, and in TypeScript writing
// its ~400 bytes of JCS a byte at a time, then crossing to C++ for the MAC and
// back for the line, cost about twice the MAC itself. Here the record is
// written as JCS, MACed after the previous MAC and framed as the log line in
// one crossing. Anything unusual (a value that is not a string or a
// non-negative safe integer, a lone surrogate, a record past 64 KiB) is left
// to the TypeScript paths, which produce the same bytes or name the problem.
#pragma once
#include <napi.h>

#include "hash/hmac_sha256.h"

namespace gk {

// sealDecisionLine(prev, out, outOffset, seq, ts, type, severity, decision,
//   source, reason, carHash, policyVersion, agentId, actionType, sessionId)
// `prev`: the previous MAC as 64 lower-case hex bytes; replaced by this
// record's MAC. The line (record, `"mac"`, newline) goes to out[outOffset..].
// Returns its length; -1: not sealed (the caller's generic path decides);
// -2: `out` has too little room (nothing was changed).
Napi::Value SealDecisionLine(const Napi::CallbackInfo& info, const HmacSha256& hmac);

}  // namespace gk
