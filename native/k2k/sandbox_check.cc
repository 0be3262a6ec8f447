#include "k2k/sandbox_check.h"

namespace gk {
namespace sandbox {

void CheckMessages(const StateView& state, const BatchView& batch, double now_ms, uint8_t* verdicts, double* counts) {
  const Params& p = state.params;
  const size_t cap = p.capacity;
  double* tokens = state.kernel_f64 + kTokens * cap;
  double* last = state.kernel_f64 + kLastMs * cap;
  double* in_flight = state.kernel_f64 + kInFlight * cap;
  const double* memory_used = state.kernel_f64 + kMemoryUsed * cap;
  double* memory_attempt = state.kernel_f64 + kMemoryAttempt * cap;
  int32_t* connections = state.kernel_i32 + kConnections * cap;
  int32_t* last_target = state.kernel_i32 + kLastTarget * cap;
  int32_t* last_topic = state.kernel_i32 + kLastTopic * cap;
  const bool limit_connections = p.connections >= 0;
  const bool limit_rate = p.rate >= 0;
  const bool limit_memory = p.memory >= 0;
  // Counts per verdict in integers, added to the doubles once.
  uint64_t local_counts[kVerdictCount] = {0};

  for (size_t i = 0; i < batch.count; ++i) {
    const uint32_t s = batch.src[i];
    const uint32_t d = batch.dst[i];
    const uint32_t t = batch.topic[i];
    const uint32_t b = batch.bytes[i];
    uint8_t v = StatelessVerdict(p, s, d, t, b, state.dst_allowed, state.topic_allowed);
    if (v == kUnauthorizedK2k) {
      last_target[s] = int32_t(d);
    } else if (v == kTopicDenied) {
      last_topic[s] = int32_t(t);
    } else if (v == kAllow) {
      if (limit_connections) {
        const uint64_t bit = uint64_t(s) * cap + d;
        uint32_t& word = state.conn_bits[bit >> 5];
        const uint32_t mask = 1u << (bit & 31);
        if ((word & mask) == 0) {
          if (connections[s] >= p.connections) {
            v = kConnectionLimit;
          } else {
            word |= mask;
            ++connections[s];
          }
        }
      }
      if (v == kAllow && limit_rate) {
        tokens[s] = Refill(tokens[s], &last[s], p.rate, now_ms);
        if (tokens[s] < kMilliPerMessage) {
          v = kRateLimited;
        } else {
          tokens[s] -= kMilliPerMessage;
        }
      }
      if (v == kAllow) {
        const double used = memory_used[s] + in_flight[s] + b;
        if (limit_memory && used > p.memory) {
          v = kMemoryExceeded;
          if (used > memory_attempt[s]) memory_attempt[s] = used;
        } else {
          in_flight[s] += b;
        }
      }
    }
    verdicts[i] = v;
    ++local_counts[v];
    if (v != kAllow && s < p.kernels) state.violations[size_t(s) * kVerdictCount + v] += 1;
  }
  for (int v = 0; v < kVerdictCount; ++v) counts[v] += double(local_counts[v]);
}

}  // namespace sandbox
}  // namespace gk
