// The JS-visible keyed HMAC object: owns one precomputed HmacSha256 and signs
// many messages with it. Destroy wipes the key state; later calls throw.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "hash/hmac_sha256.h"

namespace gk {

class HmacKeyObject : public Napi::ObjectWrap<HmacKeyObject> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  explicit HmacKeyObject(const Napi::CallbackInfo& info);
  ~HmacKeyObject() override;
  // Objects alive in this process (all threads): lets lifetime tests see
  // that forgotten keys are really finalized.
  static int64_t LiveCount();

 private:
  const HmacSha256& Live(Napi::Env env) const;
  Napi::Value SignHex(const Napi::CallbackInfo& info);
  Napi::Value SignInto(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  // The audit log's decision records (native/audit/audit_line.h).
  Napi::Value SealDecisionLine(const Napi::CallbackInfo& info);

  std::unique_ptr<HmacSha256> hmac_;
};

}  // namespace gk
