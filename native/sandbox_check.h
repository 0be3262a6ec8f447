// The K2K sandbox's message checker for the CPU: one pass in index order,
// the same rules and state as lib/sandbox/check-js.ts.
#pragma once
#include <cstddef>
#include <cstdint>

#include "sandbox_rules.cuh"

namespace gk {
namespace sandbox {

// Views of the state arrays (lib/sandbox/state.ts), lengths already checked.
struct StateView {
  Params params;
  double* kernel_f64;      // kF64Fields * capacity
  int32_t* kernel_i32;     // kI32Fields * capacity
  double* violations;      // kVerdictCount * capacity
  const uint8_t* dst_allowed;
  const uint8_t* topic_allowed;
  uint32_t* conn_bits;     // capacity * capacity / 32 when connections are limited
};

struct BatchView {
  const uint32_t* src;
  const uint32_t* dst;
  const uint32_t* topic;
  const uint32_t* bytes;
  size_t count;
};

// Writes one verdict per message and adds per-verdict counts to counts[0..7]
// (which the caller zeroes).
void CheckMessages(const StateView& state, const BatchView& batch, double now_ms, uint8_t* verdicts, double* counts);

}  // namespace sandbox
}  // namespace gk
