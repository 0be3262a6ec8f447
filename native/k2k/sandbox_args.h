// Reads and re-checks the arguments of sandboxCheck (the same in the core
// and the CUDA addon): every array against the sizes the params imply, so a
// direct caller of a .node file cannot make a checker read or write out of
// bounds. Message ids need no check here: the rules range-check them.
#pragma once
#include <napi.h>

#include "sandbox_rules.cuh"

namespace gk {
namespace sandbox {

struct CheckCall {
  StateView state;
  BatchView batch;
  double now_ms;
  uint8_t* verdicts;
  double* counts;  // kVerdictCount entries, zeroed by ParseCheckCall
};

// sandboxCheck(params, kernelF64, kernelI32, violations, dstAllowed,
//              topicAllowed, connBits, src, dst, topic, bytes, nowMs,
//              verdicts, counts)
CheckCall ParseCheckCall(const Napi::CallbackInfo& info);

}  // namespace sandbox
}  // namespace gk
