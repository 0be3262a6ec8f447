// Host build of cuda/sandbox_parallel.cuh (Thrust's CPP device system): reads
// cases (state + batch + now) on stdin, runs the parallel algorithm exactly as
// the GPU would, writes verdicts, counts and the updated state on stdout.
// test/sandbox-parallel.test.ts compares that with the sequential checker.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sandbox_parallel.cuh"
#include "stdin_reader.h"

namespace {

template <typename T>
void Write(const std::vector<T>& v) {
  std::fwrite(v.data(), sizeof(T), v.size(), stdout);
}

}  // namespace

int main() {
  using namespace gk::sandbox;
  const uint32_t cases = ReadU32();
  for (uint32_t c = 0; c < cases; ++c) {
    double now = 0;
    double params[kParamCount];
    ReadExact(&now, sizeof now);
    ReadExact(params, sizeof params);
    auto kernel_f64 = ReadArray<double>();
    auto kernel_i32 = ReadArray<int32_t>();
    auto violations = ReadArray<double>();
    auto dst_allowed = ReadArray<uint8_t>();
    auto topic_allowed = ReadArray<uint8_t>();
    auto conn_bits = ReadArray<uint32_t>();
    auto src = ReadArray<uint32_t>();
    auto dst = ReadArray<uint32_t>();
    auto topic = ReadArray<uint32_t>();
    auto bytes = ReadArray<uint32_t>();
    StateView state;
    state.params = Params{uint32_t(params[kPKernels]), uint32_t(params[kPTopics]), uint32_t(params[kPCapacity]), params[kPRate],
                          params[kPMemory], params[kPConnections], params[kPReadOnly] == 1};
    state.kernel_f64 = kernel_f64.data();
    state.kernel_i32 = kernel_i32.data();
    state.violations = violations.data();
    state.dst_allowed = dst_allowed.data();
    state.topic_allowed = topic_allowed.data();
    state.conn_bits = conn_bits.data();
    BatchView batch{src.data(), dst.data(), topic.data(), bytes.data(), src.size()};
    std::vector<uint8_t> verdicts(src.size());
    std::vector<double> counts(kVerdictCount, 0.0);
    ParallelCheck check(state, batch);
    check.Run(now);
    check.Download(verdicts.data(), counts.data());
    Write(verdicts);
    Write(counts);
    Write(kernel_f64);
    Write(kernel_i32);
    Write(violations);
    Write(conn_bits);
  }
  return 0;
}
