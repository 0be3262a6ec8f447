// The K2K sandbox check as a data-parallel algorithm over Thrust, written
// once: nvcc builds it for the GPU (cuda/sandbox_kernels.cu), and g++ builds
// the same source with THRUST_DEVICE_SYSTEM=CPP so the CPU tests can hold it
// to the sequential checker (test/sandbox-parallel.test.ts).
//
// The sequential semantics (lib/sandbox/check-js.ts) are order dependent per
// source. Each order-dependent rule becomes sorts and segmented scans:
//   1. stateless rules           one thread per message
//   2. connection limit          sort new (src, dst) pairs, keep each pair's
//                                first index, sort those by (src, index); a
//                                pair is admitted iff its rank < free slots
//   3. token bucket              stable sort the survivors by src; the k-th
//                                message of a source passes iff k < whole
//                                tokens after one refill at now_ms
//   4. memory                    segmented prefix sums of bytes; everything
//                                before the first overflow passes (a binary
//                                search: the sums only grow); after it, one
//                                thread per overflowing source walks the rest
//                                in order, as the sequential rule does
//   5. accounting                counts per verdict, violation totals and the
//                                last refused target/topic per source
#pragma once
#include <thrust/copy.h>
#include <thrust/count.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/constant_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sort.h>
#include <thrust/transform.h>

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

// The batch and the state, copied to the device, checked, copied back.
class ParallelCheck {
 public:
  ParallelCheck(const StateView& state, const BatchView& batch) : state_(state), n_(batch.count) {
    const size_t cap = state.params.capacity;
    kernel_f64_.assign(state.kernel_f64, state.kernel_f64 + kF64Fields * cap);
    kernel_i32_.assign(state.kernel_i32, state.kernel_i32 + kI32Fields * cap);
    violations_.assign(state.violations, state.violations + kVerdictCount * cap);
    dst_allowed_.assign(state.dst_allowed, state.dst_allowed + cap);
    // Never empty, so its pointer is valid even with no topics (no id passes then).
    if (state.params.topics > 0) {
      topic_allowed_.assign(state.topic_allowed, state.topic_allowed + state.params.topics);
    } else {
      topic_allowed_.assign(1, 0);
    }
    if (state.params.connections >= 0) conn_bits_.assign(state.conn_bits, state.conn_bits + cap * cap / 32);
    src_.assign(batch.src, batch.src + n_);
    dst_.assign(batch.dst, batch.dst + n_);
    topic_.assign(batch.topic, batch.topic + n_);
    bytes_.assign(batch.bytes, batch.bytes + n_);
    verdicts_.resize(n_);
  }

  void Run(double now_ms) {
    if (n_ == 0) return;
    DevicePointers d = Pointers();
    const auto policy = thrust::device;
    thrust::for_each(policy, CountingIndex(0), CountingIndex(Index(n_)), StatelessStep{d});
    if (state_.params.connections >= 0) ConnectionStep(d);
    RateAndMemoryStep(d, now_ms);
    AccountingStep(d);
  }

  // Copies results back into the caller's arrays.
  void Download(uint8_t* verdicts, double* counts) {
    thrust::copy(verdicts_.begin(), verdicts_.end(), verdicts);
    thrust::copy(kernel_f64_.begin(), kernel_f64_.end(), state_.kernel_f64);
    thrust::copy(kernel_i32_.begin(), kernel_i32_.end(), state_.kernel_i32);
    thrust::copy(violations_.begin(), violations_.end(), state_.violations);
    if (state_.params.connections >= 0) thrust::copy(conn_bits_.begin(), conn_bits_.end(), state_.conn_bits);
    for (int v = 0; v < kVerdictCount; ++v) counts[v] += double(counts_[v]);
  }

 private:
  DevicePointers Pointers() {
    DevicePointers d;
    d.p = state_.params;
    d.kernel_f64 = Raw(kernel_f64_);
    d.kernel_i32 = Raw(kernel_i32_);
    d.violations = Raw(violations_);
    d.dst_allowed = Raw(dst_allowed_);
    d.topic_allowed = Raw(topic_allowed_);
    d.conn_bits = conn_bits_.empty() ? nullptr : Raw(conn_bits_);
    d.src = Raw(src_);
    d.dst = Raw(dst_);
    d.topic = Raw(topic_);
    d.bytes = Raw(bytes_);
    d.verdicts = Raw(verdicts_);
    return d;
  }

  void ConnectionStep(const DevicePointers& d) {
    const auto policy = thrust::device;
    thrust::device_vector<Index> candidates(n_);
    const Index m = Index(thrust::copy_if(policy, CountingIndex(0), CountingIndex(Index(n_)), candidates.begin(), IsNewConnection{d}) -
                          candidates.begin());
    if (m == 0) return;
    candidates.resize(m);
    thrust::device_vector<uint32_t> pair_keys(m);
    thrust::transform(policy, candidates.begin(), candidates.end(), pair_keys.begin(), PairKey{d});
    // Grouped by pair, each group in index order: the head is the pair's first message.
    thrust::stable_sort_by_key(policy, pair_keys.begin(), pair_keys.end(), candidates.begin());
    thrust::device_vector<Index> head_pos(m);
    const Index h = Index(thrust::copy_if(policy, CountingIndex(0), CountingIndex(m), head_pos.begin(), IsRunHead{Raw(pair_keys)}) -
                          head_pos.begin());
    head_pos.resize(h);
    thrust::device_vector<uint64_t> order(h);
    thrust::transform(policy, head_pos.begin(), head_pos.end(), order.begin(), HeadOrderKey{Raw(pair_keys), Raw(candidates), d.p.capacity});
    thrust::sort_by_key(policy, order.begin(), order.end(), head_pos.begin());
    thrust::device_vector<uint32_t> head_src(h);
    thrust::transform(policy, order.begin(), order.end(), head_src.begin(), HeadSource{});
    thrust::device_vector<uint32_t> rank(h);
    thrust::exclusive_scan_by_key(policy, head_src.begin(), head_src.end(), thrust::constant_iterator<uint32_t>(1), rank.begin());
    thrust::device_vector<uint8_t> admitted_at_pos(m, 0);
    thrust::device_vector<uint8_t> admitted_sorted(h);
    thrust::for_each(policy, CountingIndex(0), CountingIndex(h),
                     AdmitPair{d, Raw(head_src), Raw(head_pos), Raw(rank), Raw(pair_keys), Raw(admitted_at_pos), Raw(admitted_sorted)});
    thrust::device_vector<uint32_t> sources(h);
    thrust::device_vector<uint32_t> added(h);
    const auto ends = thrust::reduce_by_key(policy, head_src.begin(), head_src.end(), admitted_sorted.begin(), sources.begin(), added.begin(),
                                            thrust::equal_to<uint32_t>(), thrust::plus<uint32_t>());
    const Index u = Index(ends.first - sources.begin());
    thrust::for_each(policy, CountingIndex(0), CountingIndex(u), AddConnections{d, Raw(sources), Raw(added)});
    // Every message of a pair shares its head's answer.
    thrust::device_vector<uint8_t> run_admitted(m);
    thrust::inclusive_scan_by_key(policy, pair_keys.begin(), pair_keys.end(), admitted_at_pos.begin(), run_admitted.begin(),
                                  thrust::equal_to<uint32_t>(), thrust::maximum<uint8_t>());
    thrust::for_each(policy, CountingIndex(0), CountingIndex(m), RefuseUnadmitted{d, Raw(run_admitted), Raw(candidates)});
  }

  void RateAndMemoryStep(const DevicePointers& d, double now_ms) {
    const auto policy = thrust::device;
    thrust::device_vector<Index> elements(n_);
    const Index q = Index(thrust::copy_if(policy, CountingIndex(0), CountingIndex(Index(n_)), elements.begin(), StillAllowed{d.verdicts}) -
                          elements.begin());
    if (q == 0) return;
    elements.resize(q);
    thrust::device_vector<uint32_t> sources(q);
    thrust::transform(policy, elements.begin(), elements.end(), sources.begin(), SourceOf{d.src});
    // Stable: each source's messages stay in index order.
    thrust::stable_sort_by_key(policy, sources.begin(), sources.end(), elements.begin());
    thrust::device_vector<uint32_t> segment_src(q);
    thrust::device_vector<uint32_t> segment_count(q);
    const auto ends = thrust::reduce_by_key(policy, sources.begin(), sources.end(), thrust::constant_iterator<uint32_t>(1), segment_src.begin(),
                                            segment_count.begin());
    const Index u = Index(ends.first - segment_src.begin());
    thrust::device_vector<Index> segment_start(u);
    thrust::exclusive_scan(policy, segment_count.begin(), segment_count.begin() + u, segment_start.begin());

    if (d.p.rate >= 0) {
      thrust::device_vector<uint32_t> rank(q);
      thrust::exclusive_scan_by_key(policy, sources.begin(), sources.end(), thrust::constant_iterator<uint32_t>(1), rank.begin());
      thrust::device_vector<double> affordable(d.p.capacity, 0.0);
      thrust::for_each(policy, CountingIndex(0), CountingIndex(u), RateSegment{d, Raw(segment_src), Raw(segment_count), now_ms, Raw(affordable)});
      thrust::for_each(policy, CountingIndex(0), CountingIndex(q), RateElement{d, Raw(sources), Raw(elements), Raw(rank), Raw(affordable)});
    }

    thrust::device_vector<uint64_t> prefix(q);
    thrust::transform(policy, elements.begin(), elements.end(), prefix.begin(), PassingBytes{d});
    thrust::inclusive_scan_by_key(policy, sources.begin(), sources.end(), prefix.begin(), prefix.begin());
    thrust::for_each(policy, CountingIndex(0), CountingIndex(u),
                     MemorySegment{d, Raw(segment_src), Raw(segment_start), Raw(segment_count), Raw(elements), Raw(prefix)});
  }

  void AccountingStep(const DevicePointers& d) {
    const auto policy = thrust::device;
    for (int v = 0; v < kVerdictCount; ++v) counts_[v] = uint64_t(thrust::count(policy, verdicts_.begin(), verdicts_.end(), uint8_t(v)));
    if (counts_[kAllow] == n_) return;
    thrust::device_vector<Index> refused(n_);
    const Index r = Index(thrust::copy_if(policy, CountingIndex(0), CountingIndex(Index(n_)), refused.begin(), IsRefusedKnownSource{d}) -
                          refused.begin());
    if (r == 0) return;
    refused.resize(r);
    thrust::device_vector<uint32_t> keys(r);
    thrust::transform(policy, refused.begin(), refused.end(), keys.begin(), ViolationKey{d});
    thrust::stable_sort_by_key(policy, keys.begin(), keys.end(), refused.begin());
    thrust::device_vector<uint32_t> unique_keys(r);
    thrust::device_vector<uint32_t> key_counts(r);
    thrust::device_vector<uint32_t> unique_keys2(r);
    thrust::device_vector<Index> last_index(r);
    const auto ends = thrust::reduce_by_key(policy, keys.begin(), keys.end(), thrust::constant_iterator<uint32_t>(1), unique_keys.begin(),
                                            key_counts.begin());
    thrust::reduce_by_key(policy, keys.begin(), keys.end(), refused.begin(), unique_keys2.begin(), last_index.begin(), thrust::equal_to<uint32_t>(),
                          thrust::maximum<Index>());
    const Index u = Index(ends.first - unique_keys.begin());
    thrust::for_each(policy, CountingIndex(0), CountingIndex(u), AddViolations{d, Raw(unique_keys), Raw(key_counts), Raw(last_index)});
  }

  StateView state_;
  size_t n_;
  uint64_t counts_[kVerdictCount] = {0};
  thrust::device_vector<double> kernel_f64_;
  thrust::device_vector<int32_t> kernel_i32_;
  thrust::device_vector<double> violations_;
  thrust::device_vector<uint8_t> dst_allowed_;
  thrust::device_vector<uint8_t> topic_allowed_;
  thrust::device_vector<uint32_t> conn_bits_;
  thrust::device_vector<uint32_t> src_;
  thrust::device_vector<uint32_t> dst_;
  thrust::device_vector<uint32_t> topic_;
  thrust::device_vector<uint32_t> bytes_;
  thrust::device_vector<uint8_t> verdicts_;
};

}  // namespace sandbox
}  // namespace gk
