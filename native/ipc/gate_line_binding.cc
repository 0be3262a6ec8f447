// The addon's face of the gate_check line reader (native/ipc/gate_line.h).
#include "ipc/gate_line_binding.h"

#include <cstring>
#include <vector>

#include "args.h"
#include "ipc/gate_line.h"
#include "hex.h"
#include "hash/sha256.h"

namespace gk {
namespace {

constexpr size_t kHashTextBytes = 7 + 2 * kSha256DigestBytes;
constexpr size_t kFields = 14;

// parseGateLine(line, fields, out): true when `line` is a gate_check request
// the fast path takes. Then fields (an Int32Array of 14) holds the GateLine
// offsets (a nonce's, permit's or session_id's as -1, -1 when the params hold
// none), and out (at least 103 bytes) the CAR hash: its raw digest in
// [0, 32) and its "sha256:<hex>" text in [32, 103).
Napi::Value ParseGateLineFn(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_typedarray_type type;
  size_t fields_len = 0;
  void* fields_data = nullptr;
  if (napi_get_typedarray_info(env, info[1], &type, &fields_len, &fields_data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array || fields_len < kFields) {
    ThrowTypeError(env, "Expected an Int32Array of at least 14 for fields");
  }
  ByteView out_view = BytesArg(info, 2, "out");
  if (out_view.len < kSha256DigestBytes + kHashTextBytes) ThrowRangeError(env, "Expected out to hold 103 bytes");
  thread_local std::vector<char16_t> units(4096);
  size_t len = 0;
  if (napi_get_value_string_utf16(env, info[0], units.data(), units.size(), &len) != napi_ok) {
    ThrowTypeError(env, "Expected a string for line");
  }
  if (len + 1 == units.size()) {  // maybe cut short: size it and copy again
    if (napi_get_value_string_utf16(env, info[0], nullptr, 0, &len) != napi_ok) ThrowTypeError(env, "Expected a string for line");
    if (len > kMaxGateLineUnits) return Napi::Boolean::New(env, false);
    units.resize(len + 1);
    if (napi_get_value_string_utf16(env, info[0], units.data(), units.size(), &len) != napi_ok) {
      ThrowTypeError(env, "Expected a string for line");
    }
  }
  GateLine line;
  if (!ParseGateLine(units.data(), len, &line)) return Napi::Boolean::New(env, false);
  uint8_t* out = const_cast<uint8_t*>(out_view.data);
  std::memcpy(out, line.digest, kSha256DigestBytes);
  std::memcpy(out + kSha256DigestBytes, "sha256:", 7);
  ToHex(out, kSha256DigestBytes, reinterpret_cast<char*>(out + kSha256DigestBytes + 7));
  // kGateLineAbsent reads as -1; offsets are below kMaxGateLineUnits.
  const uint32_t spans[kFields] = {line.id_start,      line.id_end,      line.agent_start,  line.agent_end,
                                   line.action_start,  line.action_end,  line.nonce_start,  line.nonce_end,
                                   line.permit_start,  line.permit_end,  line.session_start, line.session_end,
                                   line.car_start,     line.car_end};
  int32_t* fields = static_cast<int32_t*>(fields_data);
  for (size_t i = 0; i < kFields; i++) fields[i] = int32_t(spans[i]);
  return Napi::Boolean::New(env, true);
}

}  // namespace

void RegisterGateLineFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("parseGateLine", Napi::Function::New<ParseGateLineFn>(env, "parseGateLine"));
  exports.Set("gateLineMemoStats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                GateLineMemoStats s = GateLineParamsMemoStats();
                Napi::Array out = Napi::Array::New(info.Env(), 2);
                out.Set(uint32_t(0), Napi::Number::New(info.Env(), double(s.hits)));
                out.Set(uint32_t(1), Napi::Number::New(info.Env(), double(s.misses)));
                return out;
              }));
}

}  // namespace gk
