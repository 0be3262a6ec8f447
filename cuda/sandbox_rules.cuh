// K2K sandbox rules shared by the C++ loop (native/k2k/sandbox_check.cc), the
// CUDA kernels (cuda/sandbox_kernels.cu) and the host build of the parallel
// algorithm that the CPU tests run. lib/k2k/check-js.ts documents the
// semantics; lib/k2k/state.ts documents the state layout.
#pragma once
#include "hd.cuh"

namespace gk {
namespace sandbox {

// Verdict codes: lib/k2k/verdicts.ts holds the same numbers.
enum Verdict : uint8_t {
  kAllow = 0,
  kUnauthorizedK2k = 1,
  kTopicDenied = 2,
  kConnectionLimit = 3,
  kRateLimited = 4,
  kMemoryExceeded = 5,
  kWriteDenied = 6,
  kUnknownKernel = 7,
};
constexpr int kVerdictCount = 8;

// Indices into the params array (P_* in state.ts).
enum Param { kPKernels = 0, kPTopics, kPRate, kPMemory, kPConnections, kPReadOnly, kPCapacity, kPTopicCapacity, kParamCount };
// Fields of the per-kernel arrays (KF_* / KI_* in state.ts).
enum KernelF64 { kTokens = 0, kLastMs, kInFlight, kMemoryUsed, kMemoryAttempt, kF64Fields };
enum KernelI32 { kConnections = 0, kLastTarget, kLastTopic, kI32Fields };

constexpr double kMilliPerMessage = 1000.0;

struct Params {
  uint32_t kernels;
  uint32_t topics;
  uint32_t capacity;
  double rate;         // messages per second, < 0 unlimited
  double memory;       // bytes, < 0 unlimited
  double connections;  // < 0 unlimited
  bool read_only;
};

// Views of the state arrays (lib/k2k/state.ts), lengths already checked.
struct StateView {
  Params params;
  double* kernel_f64;   // kF64Fields * capacity
  int32_t* kernel_i32;  // kI32Fields * capacity
  double* violations;   // kVerdictCount * capacity
  const uint8_t* dst_allowed;
  const uint8_t* topic_allowed;  // at least params.topics
  uint32_t* conn_bits;           // capacity * capacity / 32 when connections are limited, else unused
};

struct BatchView {
  const uint32_t* src;
  const uint32_t* dst;
  const uint32_t* topic;
  const uint32_t* bytes;
  size_t count;
};

// The rules that look at one message alone. Returns the verdict, or kAllow
// when the message goes on to the stateful rules (connections, rate, memory).
GK_HD uint8_t StatelessVerdict(const Params& p, uint32_t src, uint32_t dst, uint32_t topic, uint32_t bytes,
                               const uint8_t* dst_allowed, const uint8_t* topic_allowed) {
  if (src >= p.kernels || dst >= p.kernels) return kUnknownKernel;
  if (dst_allowed[dst] == 0) return kUnauthorizedK2k;
  if (topic >= p.topics || topic_allowed[topic] == 0) return kTopicDenied;
  if (p.read_only && bytes > 0) return kWriteDenied;
  return kAllow;
}

// Milli-tokens in a bucket after refilling it at now_ms. A full second
// refills it, so the elapsed time is capped first and the product stays an
// exact integer in a double. *last is updated; a clock that went back
// refills nothing.
GK_HD double Refill(double tokens, double* last, double rate, double now_ms) {
  if (*last < 0) {
    *last = now_ms;
    return rate * kMilliPerMessage;
  }
  if (now_ms > *last) {
    double elapsed = now_ms - *last;
    if (elapsed > kMilliPerMessage) elapsed = kMilliPerMessage;
    double filled = tokens + elapsed * rate;
    double full = rate * kMilliPerMessage;
    *last = now_ms;
    return filled < full ? filled : full;
  }
  return tokens;
}

// Whole messages a bucket of `tokens` milli-tokens pays for.
GK_HD double AffordableMessages(double tokens) {
  return tokens < kMilliPerMessage ? 0.0 : double(uint64_t(tokens / kMilliPerMessage));
}

GK_HD bool ConnectionBit(const uint32_t* bits, uint32_t capacity, uint32_t src, uint32_t dst) {
  uint64_t bit = uint64_t(src) * capacity + dst;
  return (bits[bit >> 5] >> (bit & 31)) & 1u;
}

}  // namespace sandbox
}  // namespace gk
