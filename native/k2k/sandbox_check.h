// The K2K sandbox's message checker for the CPU: one pass in index order,
// the same rules and state as lib/k2k/check-js.ts.
#pragma once
#include <cstddef>
#include <cstdint>

#include "sandbox_rules.cuh"

namespace gk {
namespace sandbox {

// Writes one verdict per message and adds per-verdict counts to counts[0..7]
// (which the caller zeroes).
void CheckMessages(const StateView& state, const BatchView& batch, double now_ms, uint8_t* verdicts, double* counts);

}  // namespace sandbox
}  // namespace gk
