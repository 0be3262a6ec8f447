// N-API surface of the replay detector:
//   replayCreate(capacity) / replayShared(name, capacity) -> handle
//   replayCheck(handle, nonce, expiresAtMs, nowMs) -> 0 fresh | 1 replay | 2 saturated
//   replayContains(handle, nonce, nowMs) -> boolean (read-only)
//   replayStats(handle, out: Float64Array(5)) ; replayClose(handle)
#include "stores/replay_binding.h"

#include <cmath>
#include <cstring>

#include "args.h"
#include "stores/replay_store.h"
#include "stores/store_handle.h"

namespace gk {
namespace {

constexpr napi_type_tag kReplayTag = {0x6b8e1d2c4f3a5b09ULL, 0x91c2e7d45a6b3f10ULL};
constexpr double kMaxCapacity = 1 << 26;

SharedRegistry<ReplayStore>& Registry() {
  static SharedRegistry<ReplayStore> registry;
  return registry;
}

size_t CapacityArg(const Napi::CallbackInfo& info, size_t index) {
  return PositiveIntegerArg(info, index, kMaxCapacity, "Expected an integer capacity in [1, 2^26]");
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  return WrapStore(info.Env(), std::make_shared<ReplayStore>(CapacityArg(info, 0)), &kReplayTag);
}

Napi::Value Shared(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) ThrowTypeError(info.Env(), "Expected a string name");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  size_t capacity = CapacityArg(info, 1);
  bool mismatch = false;
  std::shared_ptr<ReplayStore> store = Registry().Get(
      name, [&] { return std::make_shared<ReplayStore>(capacity); },
      [&](const ReplayStore& s) { return s.capacity() == capacity; }, &mismatch);
  if (mismatch) ThrowRangeError(info.Env(), "A shared replay detector of this name exists with another capacity");
  return WrapStore(info.Env(), std::move(store), &kReplayTag);
}

Napi::Value Check(const Napi::CallbackInfo& info) {
  ReplayStore& store = LiveStore<ReplayStore>(info, &kReplayTag, "ReplayDetector");
  ByteView nonce = DataArg(info, 1, "nonce");
  double expires = FiniteArg(info, 2, "Expected a finite expiresAtMs");
  double now = FiniteArg(info, 3, "Expected a finite nowMs");
  NonceKey key = ReplayStore::KeyOf(nonce.data, nonce.len);
  return Napi::Number::New(info.Env(), int(store.Check(key, expires, now)));
}

Napi::Value Contains(const Napi::CallbackInfo& info) {
  ReplayStore& store = LiveStore<ReplayStore>(info, &kReplayTag, "ReplayDetector");
  ByteView nonce = DataArg(info, 1, "nonce");
  double now = FiniteArg(info, 2, "Expected a finite nowMs");
  return Napi::Boolean::New(info.Env(), store.Contains(ReplayStore::KeyOf(nonce.data, nonce.len), now));
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  ReplayStore& store = LiveStore<ReplayStore>(info, &kReplayTag, "ReplayDetector");
  MutableByteView out = OutArg(info, 1, 5 * sizeof(double), "out");
  ReplayStats s = store.Stats();
  double values[5] = {double(s.size), double(s.capacity), double(s.replays), double(s.saturated), double(s.accepted)};
  std::memcpy(out.data, values, sizeof(values));
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  HandleArg<ReplayStore>(info, &kReplayTag, "ReplayDetector")->store.reset();
  return info.Env().Undefined();
}

}  // namespace

void RegisterReplayFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("replayCreate", Napi::Function::New<Create>(env, "replayCreate"));
  exports.Set("replayShared", Napi::Function::New<Shared>(env, "replayShared"));
  exports.Set("replayCheck", Napi::Function::New<Check>(env, "replayCheck"));
  exports.Set("replayContains", Napi::Function::New<Contains>(env, "replayContains"));
  exports.Set("replayStats", Napi::Function::New<Stats>(env, "replayStats"));
  exports.Set("replayClose", Napi::Function::New<Close>(env, "replayClose"));
}

}  // namespace gk
