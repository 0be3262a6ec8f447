#include "hash/hmac_key.h"

#include "args.h"
#include "audit/audit_line.h"
#include "hex.h"

namespace gk {

namespace {
std::atomic<int64_t> g_live_keys{0};
}

int64_t HmacKeyObject::LiveCount() { return g_live_keys.load(std::memory_order_relaxed); }

HmacKeyObject::~HmacKeyObject() { g_live_keys.fetch_sub(1, std::memory_order_relaxed); }

void HmacKeyObject::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "HmacKey",
                                    {
                                        InstanceMethod<&HmacKeyObject::SignHex>("signHex"),
                                        InstanceMethod<&HmacKeyObject::SignInto>("signInto"),
                                        InstanceMethod<&HmacKeyObject::Verify>("verify"),
                                        InstanceMethod<&HmacKeyObject::Destroy>("destroy"),
                                        InstanceMethod<&HmacKeyObject::SealDecisionLine>("sealDecisionLine"),
                                    });
  exports.Set("HmacKey", ctor);
  exports.Set("liveHmacKeys", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), double(LiveCount()));
              }));
}

HmacKeyObject::HmacKeyObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HmacKeyObject>(info) {
  ByteView key = BytesArg(info, 0, "key");
  hmac_ = std::make_unique<HmacSha256>(key.data, key.len);
  // Counted last: a constructor that throws never runs the destructor.
  g_live_keys.fetch_add(1, std::memory_order_relaxed);
}

const HmacSha256& HmacKeyObject::Live(Napi::Env env) const {
  if (!hmac_) ThrowClosed(env, "HmacKey");
  return *hmac_;
}

Napi::Value HmacKeyObject::SignHex(const Napi::CallbackInfo& info) {
  const HmacSha256& hmac = Live(info.Env());
  ByteView data = DataArg(info, 0, "data");
  uint8_t mac[kSha256DigestBytes];
  hmac.Sign(data.data, data.len, mac);
  char hex[2 * kSha256DigestBytes];
  ToHex(mac, sizeof(mac), hex);
  return Napi::String::New(info.Env(), hex, sizeof(hex));
}

Napi::Value HmacKeyObject::SignInto(const Napi::CallbackInfo& info) {
  const HmacSha256& hmac = Live(info.Env());
  ByteView data = DataArg(info, 0, "data");
  MutableByteView out = OutArg(info, 1, kSha256DigestBytes, "out");
  hmac.Sign(data.data, data.len, out.data);
  return info.Env().Undefined();
}

Napi::Value HmacKeyObject::Verify(const Napi::CallbackInfo& info) {
  const HmacSha256& hmac = Live(info.Env());
  ByteView data = DataArg(info, 0, "data");
  ByteView mac = BytesArg(info, 1, "mac");
  // A MAC's length is public, so rejecting a wrong length early leaks nothing.
  if (mac.len != kSha256DigestBytes) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), hmac.Verify(data.data, data.len, mac.data));
}

Napi::Value HmacKeyObject::SealDecisionLine(const Napi::CallbackInfo& info) {
  return gk::SealDecisionLine(info, Live(info.Env()));
}

Napi::Value HmacKeyObject::Destroy(const Napi::CallbackInfo& info) {
  hmac_.reset();  // the destructor wipes the midstates
  return info.Env().Undefined();
}

}  // namespace gk
