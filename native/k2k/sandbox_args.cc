#include "k2k/sandbox_args.h"

#include <cmath>

#include "args.h"

namespace gk {
namespace sandbox {
namespace {

template <typename T, napi_typedarray_type kType>
T* TypedArg(const Napi::CallbackInfo& info, size_t index, size_t min_length, const char* message) {
  napi_value value = info[index];
  bool is_typed = false;
  napi_is_typedarray(info.Env(), value, &is_typed);
  if (!is_typed) ThrowTypeError(info.Env(), message);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_get_typedarray_info(info.Env(), value, &type, &length, &data, nullptr, nullptr);
  if (type != kType) ThrowTypeError(info.Env(), message);
  if (length < min_length) ThrowRangeError(info.Env(), message);
  return static_cast<T*>(data);
}

size_t TypedLength(const Napi::CallbackInfo& info, size_t index) {
  size_t length = 0;
  napi_get_typedarray_info(info.Env(), info[index], nullptr, &length, nullptr, nullptr, nullptr);
  return length;
}

// A params entry that must be an integer in [lo, hi].
double IntegerParam(Napi::Env env, const double* params, int index, double lo, double hi) {
  double v = params[index];
  if (!(v >= lo && v <= hi) || std::floor(v) != v) ThrowRangeError(env, "Invalid sandbox params");
  return v;
}

constexpr double kMaxCapacity = 16384;
constexpr double kMaxTopics = double(1 << 20);

}  // namespace

CheckCall ParseCheckCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 14) ThrowTypeError(env, "sandboxCheck expects 14 arguments");
  const double* params = TypedArg<double, napi_float64_array>(info, 0, kParamCount, "Expected the params Float64Array");
  CheckCall call;
  StateView& state = call.state;
  Params& p = state.params;
  const double capacity = IntegerParam(env, params, kPCapacity, 32, kMaxCapacity);
  const double topic_capacity = IntegerParam(env, params, kPTopicCapacity, 1, kMaxTopics);
  if (uint32_t(capacity) % 32 != 0) ThrowRangeError(env, "Invalid sandbox params");
  p.capacity = uint32_t(capacity);
  p.kernels = uint32_t(IntegerParam(env, params, kPKernels, 0, capacity));
  p.topics = uint32_t(IntegerParam(env, params, kPTopics, 0, topic_capacity));
  p.rate = IntegerParam(env, params, kPRate, -1, 1e9);
  p.memory = IntegerParam(env, params, kPMemory, -1, 4503599627370496.0);
  p.connections = IntegerParam(env, params, kPConnections, -1, kMaxCapacity);
  p.read_only = IntegerParam(env, params, kPReadOnly, 0, 1) == 1;

  const size_t cap = p.capacity;
  state.kernel_f64 = TypedArg<double, napi_float64_array>(info, 1, kF64Fields * cap, "Expected the kernel Float64Array");
  state.kernel_i32 = TypedArg<int32_t, napi_int32_array>(info, 2, kI32Fields * cap, "Expected the kernel Int32Array");
  state.violations = TypedArg<double, napi_float64_array>(info, 3, kVerdictCount * cap, "Expected the violations Float64Array");
  state.dst_allowed = TypedArg<uint8_t, napi_uint8_array>(info, 4, cap, "Expected the dstAllowed Uint8Array");
  state.topic_allowed = TypedArg<uint8_t, napi_uint8_array>(info, 5, p.topics, "Expected the topicAllowed Uint8Array");
  state.conn_bits = TypedArg<uint32_t, napi_uint32_array>(info, 6, p.connections >= 0 ? cap * cap / 32 : 0, "Expected the connection Uint32Array");

  BatchView& batch = call.batch;
  batch.src = TypedArg<uint32_t, napi_uint32_array>(info, 7, 0, "Expected a Uint32Array for src");
  batch.count = TypedLength(info, 7);
  batch.dst = TypedArg<uint32_t, napi_uint32_array>(info, 8, batch.count, "Expected a Uint32Array for dst as long as src");
  batch.topic = TypedArg<uint32_t, napi_uint32_array>(info, 9, batch.count, "Expected a Uint32Array for topic as long as src");
  batch.bytes = TypedArg<uint32_t, napi_uint32_array>(info, 10, batch.count, "Expected a Uint32Array for bytes as long as src");
  call.now_ms = FiniteArg(info, 11, "Expected a finite nowMs");
  if (call.now_ms < 0 || std::floor(call.now_ms) != call.now_ms || call.now_ms > 9007199254740991.0) {
    ThrowRangeError(env, "Expected a non-negative integer nowMs");
  }
  call.verdicts = TypedArg<uint8_t, napi_uint8_array>(info, 12, batch.count, "Expected a Uint8Array for verdicts as long as src");
  call.counts = TypedArg<double, napi_float64_array>(info, 13, kVerdictCount, "Expected a Float64Array(8) for counts");
  for (int v = 0; v < kVerdictCount; ++v) call.counts[v] = 0;
  return call;
}

}  // namespace sandbox
}  // namespace gk
