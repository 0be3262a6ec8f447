// The K2K sandbox check as a data-parallel algorithm over Thrust, written
// once: nvcc builds it for the GPU (cuda/sandbox_kernels.cu), and g++ builds
// the same source with THRUST_DEVICE_SYSTEM=CPP so the CPU tests can hold it
// to the sequential checker (test/sandbox-parallel.test.ts).
//
// The sequential semantics (lib/k2k/check-js.ts) are order dependent per
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

#include "sandbox_parallel_steps.cuh"

namespace gk {
namespace sandbox {

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
