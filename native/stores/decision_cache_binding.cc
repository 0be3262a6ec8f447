// N-API surface of the decision cache:
//   cacheCreate(capacity, shards) / cacheShared(name, capacity, shards) -> handle
//   cacheGet(handle, carHash, policyVersion, nowMs, out: bytes of Float64Array(3))
//       -> undefined (miss) | reason id (an integer >= 0, interned: cacheReason
//          gives its text, the same for the life of the store) | reason string
//          (not interned); out = [decision, policyVersion, expiresAtMs]
//   cacheReason(handle, reasonId) -> string | undefined (an id never given out)
//   cachePut(handle, carHash, decision, policyVersion, expiresAtMs, reason)
//   cacheInvalidate(handle, carHash) -> boolean ; cacheClear(handle) -> removed
//   cacheStats(handle, out: bytes of Float64Array(6)) ; cacheClose(handle)
// Results go into caller-provided memory: building a JS object per hit would
// cost more than the lookup.
#include "stores/decision_cache_binding.h"

#include <cmath>
#include <cstring>

#include "args.h"
#include "stores/decision_cache.h"
#include "stores/store_handle.h"

namespace gk {
namespace {

constexpr napi_type_tag kCacheTag = {0x2f7c9a1e83b64d05ULL, 0xc41d6e9b27a83f52ULL};
constexpr double kMaxCapacity = 1 << 26;
constexpr double kMaxShards = 256;
constexpr size_t kMaxReasonBytes = 4096;

SharedRegistry<DecisionCache>& Registry() {
  static SharedRegistry<DecisionCache> registry;
  return registry;
}

CacheKey KeyArg(const Napi::CallbackInfo& info, size_t index) {
  char16_t text[73];
  size_t len = 0;
  CacheKey key;
  if (napi_get_value_string_utf16(info.Env(), info[index], text, 73, &len) != napi_ok ||
      !ParseCarHash(text, len, &key)) {
    ThrowTypeError(info.Env(), "Expected a CAR hash (\"sha256:\" + 64 lower-case hex digits) for carHash");
  }
  return key;
}

DecisionCache& Live(const Napi::CallbackInfo& info) {
  return LiveStore<DecisionCache>(info, &kCacheTag, "DecisionCache");
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  size_t capacity = PositiveIntegerArg(info, 0, kMaxCapacity, "Expected an integer capacity in [1, 2^26]");
  size_t shards = PositiveIntegerArg(info, 1, kMaxShards, "Expected an integer shard count in [1, 256]");
  return WrapStore(info.Env(), std::make_shared<DecisionCache>(capacity, shards), &kCacheTag);
}

Napi::Value Shared(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) ThrowTypeError(info.Env(), "Expected a string name");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  size_t capacity = PositiveIntegerArg(info, 1, kMaxCapacity, "Expected an integer capacity in [1, 2^26]");
  size_t shards = PositiveIntegerArg(info, 2, kMaxShards, "Expected an integer shard count in [1, 256]");
  bool mismatch = false;
  std::shared_ptr<DecisionCache> store = Registry().Get(
      name, [&] { return std::make_shared<DecisionCache>(capacity, shards); },
      [&](const DecisionCache& c) { return c.capacity() == capacity; }, &mismatch);
  if (mismatch) ThrowRangeError(info.Env(), "A shared decision cache of this name exists with another capacity");
  return WrapStore(info.Env(), std::move(store), &kCacheTag);
}

Napi::Value Get(const Napi::CallbackInfo& info) {
  DecisionCache& cache = Live(info);
  CacheKey key = KeyArg(info, 1);
  double version = FiniteArg(info, 2, "Expected a finite policyVersion");
  double now = FiniteArg(info, 3, "Expected a finite nowMs");
  MutableByteView out = OutArg(info, 4, 3 * sizeof(double), "out");
  CacheHit hit;
  if (!cache.Get(key, version, now, &hit)) return info.Env().Undefined();
  double values[3] = {double(hit.decision), hit.policy_version, hit.expires_at_ms};
  std::memcpy(out.data, values, sizeof(values));
  // An id is a small integer (no allocation in V8); the caller maps it to its
  // text once per id, not once per hit.
  if (hit.reason_id >= 0) return Napi::Number::New(info.Env(), hit.reason_id);
  return Napi::String::New(info.Env(), hit.reason);
}

Napi::Value Reason(const Napi::CallbackInfo& info) {
  DecisionCache& cache = Live(info);
  double id = FiniteArg(info, 1, "Expected a reason id");
  std::string text;
  if (id < 0 || id > 0x7fffffff || id != std::floor(id) || !cache.ReasonText(int32_t(id), &text)) {
    return info.Env().Undefined();
  }
  return Napi::String::New(info.Env(), text);
}

Napi::Value Put(const Napi::CallbackInfo& info) {
  DecisionCache& cache = Live(info);
  CacheKey key = KeyArg(info, 1);
  double decision = FiniteArg(info, 2, "Expected a decision code");
  if (decision != 0 && decision != 1 && decision != 2) ThrowRangeError(info.Env(), "Expected a decision code 0..2");
  double version = FiniteArg(info, 3, "Expected a finite policyVersion");
  double expires = FiniteArg(info, 4, "Expected a finite expiresAtMs");
  std::string reason;
  if (!info[5].IsUndefined()) {
    if (!info[5].IsString()) ThrowTypeError(info.Env(), "Expected a string reason");
    reason = info[5].As<Napi::String>().Utf8Value();
    if (reason.size() > kMaxReasonBytes) ThrowRangeError(info.Env(), "Reason longer than 4096 bytes");
  }
  cache.Put(key, CachedDecision{int(decision), version, expires, std::move(reason)});
  return info.Env().Undefined();
}

Napi::Value Invalidate(const Napi::CallbackInfo& info) {
  DecisionCache& cache = Live(info);
  return Napi::Boolean::New(info.Env(), cache.Invalidate(KeyArg(info, 1)));
}

Napi::Value Clear(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(Live(info).Clear()));
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  DecisionCache& cache = Live(info);
  MutableByteView out = OutArg(info, 1, 6 * sizeof(double), "out");
  CacheStats s = cache.Stats();
  double values[6] = {double(s.entries), double(s.capacity), double(s.hits),
                      double(s.misses),  double(s.evictions), double(s.expirations)};
  std::memcpy(out.data, values, sizeof(values));
  return info.Env().Undefined();
}

// An ArrayBuffer over the store's epoch counter (4 bytes), for near caches.
// It owns a reference to the counter only, never to the store. Undefined where
// the runtime refuses external buffers (e.g. a V8 sandbox): no near cache then.
Napi::Value EpochBuffer(const Napi::CallbackInfo& info) {
  DecisionCache& cache = Live(info);
  auto* owner = new std::shared_ptr<std::atomic<uint32_t>>(cache.epoch());
  napi_value buffer;
  napi_status status = napi_create_external_arraybuffer(
      info.Env(), owner->get(), sizeof(uint32_t),
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<std::atomic<uint32_t>>*>(hint); }, owner,
      &buffer);
  if (status != napi_ok) {
    delete owner;
    napi_value pending;
    napi_get_and_clear_last_exception(info.Env(), &pending);
    return info.Env().Undefined();
  }
  return Napi::Value(info.Env(), buffer);
}

Napi::Value AddNearHits(const Napi::CallbackInfo& info) {
  DecisionCache& cache = Live(info);
  double n = FiniteArg(info, 1, "Expected a hit count");
  if (n < 0 || n != std::floor(n)) ThrowRangeError(info.Env(), "Expected a non-negative integer hit count");
  cache.AddNearHits(uint64_t(n));
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  HandleArg<DecisionCache>(info, &kCacheTag, "DecisionCache")->store.reset();
  return info.Env().Undefined();
}

}  // namespace

void RegisterDecisionCacheFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("cacheCreate", Napi::Function::New<Create>(env, "cacheCreate"));
  exports.Set("cacheShared", Napi::Function::New<Shared>(env, "cacheShared"));
  exports.Set("cacheGet", Napi::Function::New<Get>(env, "cacheGet"));
  exports.Set("cacheReason", Napi::Function::New<Reason>(env, "cacheReason"));
  exports.Set("cachePut", Napi::Function::New<Put>(env, "cachePut"));
  exports.Set("cacheInvalidate", Napi::Function::New<Invalidate>(env, "cacheInvalidate"));
  exports.Set("cacheClear", Napi::Function::New<Clear>(env, "cacheClear"));
  exports.Set("cacheStats", Napi::Function::New<Stats>(env, "cacheStats"));
  exports.Set("cacheClose", Napi::Function::New<Close>(env, "cacheClose"));
  exports.Set("cacheEpochBuffer", Napi::Function::New<EpochBuffer>(env, "cacheEpochBuffer"));
  exports.Set("cacheAddNearHits", Napi::Function::New<AddNearHits>(env, "cacheAddNearHits"));
}

}  // namespace gk
