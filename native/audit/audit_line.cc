#include "audit/audit_line.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "args.h"
#include "hex.h"
#include "jcs/jcs_string.h"

namespace gk {
namespace {

constexpr int kNotSealed = -1;
constexpr int kOutTooSmall = -2;
// The TypeScript side's DEFAULT_MAX_BYTES: larger records take its path.
constexpr size_t kMaxRecordBytes = 64 * 1024;
constexpr size_t kMacHex = 2 * kSha256DigestBytes;
constexpr char kMacField[] = ",\"mac\":\"";

// UTF-16 units of the string being written (per thread: the addon may run in
// several worker_threads at once).
std::vector<char16_t>& UnitScratch() {
  thread_local std::vector<char16_t> units(512);
  return units;
}

// JCS bytes written into a buffer reserved ahead of each value. Every value
// method returns false when the value is not one this path writes; the record
// is then abandoned.
class RecordWriter {
 public:
  RecordWriter(napi_env env, std::vector<uint8_t>& buf) : env_(env), buf_(buf), units_(UnitScratch()) {
    if (buf_.size() < 2048) buf_.resize(2048);
    at_ = buf_.data();
  }

  size_t size() const { return size_t(at_ - buf_.data()); }
  const uint8_t* data() const { return buf_.data(); }

  void Raw(const void* s, size_t n) {
    Reserve(n);
    std::memcpy(at_, s, n);
    at_ += n;
  }
  template <size_t N>
  void Lit(const char (&s)[N]) { Raw(s, N - 1); }

  // A JS string as a JCS string: minimal escapes, UTF-8, lone surrogates refused.
  bool String(napi_value v) {
    size_t copied = 0;
    if (napi_get_value_string_utf16(env_, v, units_.data(), units_.size(), &copied) != napi_ok) return false;
    if (copied + 1 == units_.size()) {  // maybe cut short: size it and copy again
      size_t len = 0;
      if (napi_get_value_string_utf16(env_, v, nullptr, 0, &len) != napi_ok || len > kMaxRecordBytes) return false;
      units_.resize(len + 1);
      if (napi_get_value_string_utf16(env_, v, units_.data(), units_.size(), &copied) != napi_ok) return false;
    }
    Reserve(JcsStringBound(copied));
    uint8_t* end = WriteJcsString(units_.data(), copied, at_);
    if (end == nullptr) return false;
    at_ = end;
    return size() <= kMaxRecordBytes + kMacHex;
  }

  // A number that is a non-negative safe integer, in decimal (as ECMAScript
  // prints it; -0 prints as 0). Fractions, negatives and larger values are
  // left to the generic path.
  bool Integer(napi_value v) {
    double d = 0;
    if (napi_get_value_double(env_, v, &d) != napi_ok) return false;
    if (!(d >= 0 && d <= 9007199254740991.0) || d != std::floor(d)) return false;
    uint64_t n = uint64_t(d);
    char digits[20];
    size_t count = 0;
    do {
      digits[count++] = char('0' + n % 10);
      n /= 10;
    } while (n != 0);
    Reserve(count);
    while (count > 0) *at_++ = uint8_t(digits[--count]);
    return true;
  }

 private:
  void Reserve(size_t n) {
    size_t used = size();
    if (buf_.size() - used >= n) return;
    buf_.resize(std::max(buf_.size() * 2, used + n));
    at_ = buf_.data() + used;
  }

  napi_env env_;
  std::vector<uint8_t>& buf_;
  std::vector<char16_t>& units_;
  uint8_t* at_;
};

// No early exit: the compiler turns the loop into a few vector compares (the
// byte-at-a-time loop with a branch per byte was a fifth of a seal).
bool IsLowerHex(const uint8_t* p, size_t n) {
  uint8_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t digit = uint8_t(p[i] - '0') < 10;
    uint8_t lower = uint8_t(p[i] - 'a') < 6;
    bad |= uint8_t(!(digit | lower));
  }
  return bad == 0;
}

}  // namespace

Napi::Value SealDecisionLine(const Napi::CallbackInfo& info, const HmacSha256& hmac) {
  napi_env env = info.Env();
  ByteView prev_view = BytesArg(info, 0, "prev");
  ByteView out_view = BytesArg(info, 1, "out");
  size_t out_offset = LengthArg(info, 2, out_view.len, "outOffset");
  if (prev_view.len != kMacHex) ThrowRangeError(env, "Expected 64 bytes for prev");
  uint8_t* prev = const_cast<uint8_t*>(prev_view.data);
  uint8_t* out = const_cast<uint8_t*>(out_view.data);
  if (prev < out + out_view.len && out < prev + kMacHex) ThrowRangeError(env, "Expected prev not to overlap out");
  auto not_sealed = [&]() { return Napi::Number::New(env, kNotSealed); };
  if (!IsLowerHex(prev, kMacHex)) return not_sealed();

  // The MAC input: prev, then the record (whose "prev" field repeats it).
  thread_local std::vector<uint8_t> scratch;
  RecordWriter w(env, scratch);
  w.Raw(prev, kMacHex);
  // Keys in JCS (UTF-16) order.
  w.Lit("{\"action_type\":");
  if (!w.String(info[13])) return not_sealed();
  w.Lit(",\"agent_id\":");
  if (!w.String(info[12])) return not_sealed();
  w.Lit(",\"car_hash\":");
  if (!w.String(info[10])) return not_sealed();
  w.Lit(",\"decision\":");
  if (!w.String(info[7])) return not_sealed();
  w.Lit(",\"policy_version\":");
  if (!w.Integer(info[11])) return not_sealed();
  w.Lit(",\"prev\":\"");
  w.Raw(prev, kMacHex);
  w.Lit("\",\"reason\":");
  if (!w.String(info[9])) return not_sealed();
  w.Lit(",\"seq\":");
  if (!w.Integer(info[3])) return not_sealed();
  napi_valuetype session_type = napi_undefined;
  if (napi_typeof(env, info[14], &session_type) != napi_ok) return not_sealed();
  if (session_type != napi_undefined) {
    w.Lit(",\"session_id\":");
    if (!w.String(info[14])) return not_sealed();
  }
  w.Lit(",\"severity\":");
  if (!w.String(info[6])) return not_sealed();
  w.Lit(",\"source\":");
  if (!w.String(info[8])) return not_sealed();
  w.Lit(",\"ts\":");
  if (!w.Integer(info[4])) return not_sealed();
  w.Lit(",\"type\":");
  if (!w.String(info[5])) return not_sealed();
  w.Lit("}");
  size_t record_len = w.size() - kMacHex;
  if (record_len > kMaxRecordBytes) return not_sealed();

  // The line: the record without its closing brace, then ,"mac":"<hex>"} and a newline.
  size_t line_len = record_len - 1 + (sizeof(kMacField) - 1) + kMacHex + 3;
  if (out_view.len - out_offset < line_len) return Napi::Number::New(env, kOutTooSmall);
  uint8_t mac[kSha256DigestBytes];
  hmac.Sign(w.data(), w.size(), mac);
  char mac_hex[kMacHex];
  ToHex(mac, sizeof(mac), mac_hex);
  uint8_t* p = out + out_offset;
  std::memcpy(p, w.data() + kMacHex, record_len - 1);
  p += record_len - 1;
  std::memcpy(p, kMacField, sizeof(kMacField) - 1);
  p += sizeof(kMacField) - 1;
  std::memcpy(p, mac_hex, kMacHex);
  p += kMacHex;
  *p++ = '"';
  *p++ = '}';
  *p++ = '\n';
  std::memcpy(prev, mac_hex, kMacHex);
  return Napi::Number::New(env, double(line_len));
}

}  // namespace gk
