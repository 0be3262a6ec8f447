// The per-element and per-segment steps of the parallel K2K check
// (cuda/sandbox_parallel.cuh): functors for Thrust, GK_HD so the same code
// runs on the GPU and in the host build the CPU tests use.
#pragma once
#include <thrust/device_vector.h>
#include <thrust/iterator/counting_iterator.h>

#include "sandbox_rules.cuh"

namespace gk {
namespace sandbox {

using Index = uint32_t;
using CountingIndex = thrust::counting_iterator<Index>;

GK_HD void OrBits(uint32_t* word, uint32_t mask) {
#if defined(__CUDA_ARCH__)
  atomicOr(word, mask);
#else
  *word |= mask;
#endif
}

template <typename T>
T* Raw(thrust::device_vector<T>& v) {
  return thrust::raw_pointer_cast(v.data());
}

// Pointers into the device copies of the state and the batch.
struct DevicePointers {
  Params p;
  double* kernel_f64;
  int32_t* kernel_i32;
  double* violations;
  const uint8_t* dst_allowed;
  const uint8_t* topic_allowed;
  uint32_t* conn_bits;
  const uint32_t* src;
  const uint32_t* dst;
  const uint32_t* topic;
  const uint32_t* bytes;
  uint8_t* verdicts;
};

// ---- 1. stateless rules -----------------------------------------------------

struct StatelessStep {
  DevicePointers d;
  GK_HD void operator()(Index i) const {
    d.verdicts[i] = StatelessVerdict(d.p, d.src[i], d.dst[i], d.topic[i], d.bytes[i], d.dst_allowed, d.topic_allowed);
  }
};

// ---- 2. connection limit ----------------------------------------------------

struct IsNewConnection {
  DevicePointers d;
  GK_HD bool operator()(Index i) const {
    return d.verdicts[i] == kAllow && !ConnectionBit(d.conn_bits, d.p.capacity, d.src[i], d.dst[i]);
  }
};

struct PairKey {
  DevicePointers d;
  GK_HD uint32_t operator()(Index i) const { return d.src[i] * d.p.capacity + d.dst[i]; }
};

struct IsRunHead {
  const uint32_t* keys;
  GK_HD bool operator()(Index j) const { return j == 0 || keys[j] != keys[j - 1]; }
};

// Orders a pair's first message by (source, index).
struct HeadOrderKey {
  const uint32_t* pair_keys;
  const Index* candidates;
  uint32_t capacity;
  GK_HD uint64_t operator()(Index pos) const {
    return (uint64_t(pair_keys[pos] / capacity) << 32) | candidates[pos];
  }
};

struct HeadSource {
  GK_HD uint32_t operator()(uint64_t key) const { return uint32_t(key >> 32); }
};

// Admits a new pair iff its rank among the source's new pairs is below the
// source's free connection slots, and records the connection.
struct AdmitPair {
  DevicePointers d;
  const uint32_t* head_src;
  const Index* head_pos;
  const uint32_t* rank;
  const uint32_t* pair_keys;
  uint8_t* admitted_at_pos;
  uint8_t* admitted_sorted;
  GK_HD void operator()(Index j) const {
    const uint32_t s = head_src[j];
    const int32_t* connections = d.kernel_i32 + kConnections * d.p.capacity;
    const double free_slots = d.p.connections - double(connections[s]);
    const bool admitted = double(rank[j]) < free_slots;
    admitted_sorted[j] = admitted ? 1 : 0;
    admitted_at_pos[head_pos[j]] = admitted ? 1 : 0;
    if (admitted) {
      const uint32_t bit = pair_keys[head_pos[j]];  // src * capacity + dst
      OrBits(&d.conn_bits[bit >> 5], 1u << (bit & 31));
    }
  }
};

struct AddConnections {
  DevicePointers d;
  const uint32_t* sources;
  const uint32_t* added;
  GK_HD void operator()(Index u) const { d.kernel_i32[kConnections * d.p.capacity + sources[u]] += int32_t(added[u]); }
};

struct RefuseUnadmitted {
  DevicePointers d;
  const uint8_t* run_admitted;
  const Index* candidates;
  GK_HD void operator()(Index j) const {
    if (!run_admitted[j]) d.verdicts[candidates[j]] = kConnectionLimit;
  }
};

// ---- 3. token bucket ----------------------------------------------------------

struct StillAllowed {
  const uint8_t* verdicts;
  GK_HD bool operator()(Index i) const { return verdicts[i] == kAllow; }
};

struct SourceOf {
  const uint32_t* src;
  GK_HD uint32_t operator()(Index i) const { return src[i]; }
};

// Refills each source once at now_ms, notes how many messages it can pay for
// (per kernel, for step RateElement) and spends what this batch uses.
struct RateSegment {
  DevicePointers d;
  const uint32_t* sources;
  const uint32_t* counts;
  double now_ms;
  double* affordable;  // per kernel
  GK_HD void operator()(Index u) const {
    const uint32_t s = sources[u];
    const size_t cap = d.p.capacity;
    double* tokens = d.kernel_f64 + kTokens * cap + s;
    double* last = d.kernel_f64 + kLastMs * cap + s;
    *tokens = Refill(*tokens, last, d.p.rate, now_ms);
    const double can = AffordableMessages(*tokens);
    affordable[s] = can;
    const double used = double(counts[u]) < can ? double(counts[u]) : can;
    *tokens -= used * kMilliPerMessage;
  }
};

struct RateElement {
  DevicePointers d;
  const uint32_t* sources;  // sorted, per element
  const Index* elements;
  const uint32_t* rank;
  const double* affordable;
  GK_HD void operator()(Index j) const {
    if (double(rank[j]) >= affordable[sources[j]]) d.verdicts[elements[j]] = kRateLimited;
  }
};

// ---- 4. memory ------------------------------------------------------------------

struct PassingBytes {
  DevicePointers d;
  GK_HD uint64_t operator()(Index i) const { return d.verdicts[i] == kAllow ? uint64_t(d.bytes[i]) : 0; }
};

struct MemorySegment {
  DevicePointers d;
  const uint32_t* sources;  // per segment
  const Index* starts;
  const uint32_t* counts;
  const Index* elements;
  const uint64_t* prefix;  // inclusive prefix sums of passing bytes, per segment
  GK_HD void operator()(Index u) const {
    const uint32_t s = sources[u];
    const size_t cap = d.p.capacity;
    double* in_flight = d.kernel_f64 + kInFlight * cap + s;
    const double memory_used = d.kernel_f64[kMemoryUsed * cap + s];
    const Index st = starts[u];
    const Index en = st + counts[u];
    if (d.p.memory < 0) {
      *in_flight += double(prefix[en - 1]);
      return;
    }
    const uint64_t base = uint64_t(memory_used) + uint64_t(*in_flight);
    const uint64_t limit = uint64_t(d.p.memory);
    // First position whose running total overflows (the sums only grow).
    Index lo = st;
    Index hi = en;
    while (lo < hi) {
      const Index mid = lo + (hi - lo) / 2;
      if (base + prefix[mid] > limit) hi = mid; else lo = mid + 1;
    }
    uint64_t used = base + (lo > st ? prefix[lo - 1] : 0);
    double* attempt = d.kernel_f64 + kMemoryAttempt * cap + s;
    for (Index k = lo; k < en; ++k) {
      const Index i = elements[k];
      if (d.verdicts[i] != kAllow) continue;
      const uint64_t next = used + d.bytes[i];
      if (next > limit) {
        d.verdicts[i] = kMemoryExceeded;
        if (double(next) > *attempt) *attempt = double(next);
      } else {
        used = next;
      }
    }
    *in_flight = double(used) - memory_used;
  }
};

// ---- 5. accounting ---------------------------------------------------------------

struct IsRefusedKnownSource {
  DevicePointers d;
  GK_HD bool operator()(Index i) const { return d.verdicts[i] != kAllow && d.src[i] < d.p.kernels; }
};

struct ViolationKey {
  DevicePointers d;
  GK_HD uint32_t operator()(Index i) const { return d.src[i] * kVerdictCount + d.verdicts[i]; }
};

struct AddViolations {
  DevicePointers d;
  const uint32_t* keys;
  const uint32_t* counts;
  const Index* last_index;
  GK_HD void operator()(Index u) const {
    const uint32_t key = keys[u];
    const uint32_t s = key / kVerdictCount;
    const uint32_t v = key % kVerdictCount;
    d.violations[key] += double(counts[u]);
    const size_t cap = d.p.capacity;
    if (v == kUnauthorizedK2k) d.kernel_i32[kLastTarget * cap + s] = int32_t(d.dst[last_index[u]]);
    if (v == kTopicDenied) d.kernel_i32[kLastTopic * cap + s] = int32_t(d.topic[last_index[u]]);
  }
};

}  // namespace sandbox
}  // namespace gk
