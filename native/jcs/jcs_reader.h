// Reads JSON text (UTF-16 units, as a JS string holds it) straight to its
// RFC 8785 canonical bytes, for the subset the server's gate_check fast path
// takes (native/ipc/gate_line.h says which); false for anything else, which the
// general path (JSON.parse, then the TypeScript canonical writer) answers.
// It also notes where a CAR's action_type and agent_id values lie. Used
// only by gate_line.cc; a header so that its small methods inline.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "byte_sink.h"
#include "jcs/jcs_number.h"
#include "jcs/jcs_string.h"

namespace gk {
namespace jcs_reader {

// carHash's DEFAULT_MAX_BYTES: a larger form is the TypeScript path's to refuse.
constexpr size_t kMaxCanonicalBytes = 64 * 1024;
// An integer of at most 15 digits is exact as a double and prints as written.
constexpr size_t kMaxIntegerDigits = 15;
// Deepest nesting read (the outermost object is depth 1).
constexpr int kMaxDepth = 16;

struct Span {
  size_t start = 0;
  size_t end = 0;
};

// One object's members while it is read: keys as UTF-16 units, values as
// canonical bytes; then sorted and written out.
struct Member {
  uint32_t key_at, key_len, value_at, value_len;
};
struct Level {
  std::vector<char16_t> keys;
  ByteSink values;
  std::vector<Member> members;
  std::vector<uint32_t> order;
};

template <size_t N>
bool Is(const char16_t* u, size_t n, const char (&ascii)[N]) {
  if (n != N - 1) return false;
  for (size_t i = 0; i < n; i++) {
    if (u[i] != char16_t(uint8_t(ascii[i]))) return false;
  }
  return true;
}

inline int HexValue(char16_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Appends the JCS form of units u[0, n); false for a lone surrogate.
inline bool PutJcsString(ByteSink* out, const char16_t* u, size_t n) {
  uint8_t* end = WriteJcsString(u, n, out->Room(JcsStringBound(n)));
  if (end == nullptr) return false;
  out->Commit(end);
  return true;
}

class Parser {
 public:
  Parser(const char16_t* s, size_t n, std::vector<Level>& levels) : s_(s), n_(n), levels_(levels) {}

  void Ws() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  bool Eat(char16_t c) {
    if (i_ < n_ && s_[i_] == c) {
      i_++;
      return true;
    }
    return false;
  }
  bool AtEnd() const { return i_ == n_; }
  size_t pos() const { return i_; }
  void SetPos(size_t at) { i_ = at; }

  // Past the object at the cursor by matching brackets outside strings,
  // without judging it: where the params memo looks up its text. False when
  // it is not one, or runs past `limit` units.
  bool SkipObject(size_t limit) {
    size_t start = i_;
    int depth = 0;
    while (i_ < n_ && i_ - start <= limit) {
      char16_t c = s_[i_];
      if (c == '"') {
        Span span;
        bool escaped = false;
        if (!RawString(&span, &escaped)) return false;
        continue;
      }
      i_++;
      if (c == '{' || c == '[') {
        depth++;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i_ - start <= limit;
      } else if (depth == 0) {
        return false;  // not at an object
      }
    }
    return false;
  }
  char16_t Peek() const { return i_ < n_ ? s_[i_] : 0; }

  // A JSON string at the cursor: the span between its quotes and whether it
  // holds escapes (checked when decoded). False for an unterminated string or
  // a raw control character, which JSON does not allow.
  bool RawString(Span* span, bool* escaped) {
    if (!Eat('"')) return false;
    span->start = i_;
    *escaped = false;
    while (i_ < n_) {
#if defined(__SSE2__)
      // Past eight units at a time while none ends the string, starts an
      // escape or is a control character (units below 0x20 compare as
      // below 0x20 after the sign flip that makes the compare unsigned).
      while (i_ + 8 <= n_) {
        __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s_ + i_));
        __m128i flipped = _mm_xor_si128(v, _mm_set1_epi16(-0x8000));
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi16(v, _mm_set1_epi16(0x22)), _mm_cmpeq_epi16(v, _mm_set1_epi16(0x5c)));
        stop = _mm_or_si128(stop, _mm_cmplt_epi16(flipped, _mm_set1_epi16(0x20 - 0x8000)));
        if (_mm_movemask_epi8(stop) != 0) break;
        i_ += 8;
      }
      if (i_ == n_) break;
#endif
      char16_t c = s_[i_];
      if (c == '"') {
        span->end = i_++;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        *escaped = true;
        i_ += 2;  // the escaped unit can never close the string
        continue;
      }
      i_++;
    }
    return false;
  }

  // The string's units with escapes resolved, appended to `out`.
  bool Decode(Span span, std::vector<char16_t>* out) const {
    for (size_t k = span.start; k < span.end; k++) {
      char16_t c = s_[k];
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      k++;  // RawString guarantees a unit after the backslash, before the closing quote
      switch (s_[k]) {
        case '"': out->push_back(u'"'); break;
        case '\\': out->push_back(u'\\'); break;
        case '/': out->push_back(u'/'); break;
        case 'b': out->push_back(0x08); break;
        case 'f': out->push_back(0x0c); break;
        case 'n': out->push_back(0x0a); break;
        case 'r': out->push_back(0x0d); break;
        case 't': out->push_back(0x09); break;
        case 'u': {
          if (k + 4 >= span.end) return false;
          int v = 0;
          for (size_t j = 1; j <= 4; j++) {
            int h = HexValue(s_[k + j]);
            if (h < 0) return false;
            v = (v << 4) | h;
          }
          out->push_back(char16_t(v));
          k += 4;
          break;
        }
        default:
          return false;
      }
    }
    return true;
  }

  // The canonical form of the value at the cursor, appended to `out`.
  bool Value(ByteSink* out, int depth) {
    switch (Peek()) {
      case '{':
        return Object(out, depth + 1);
      case '[':
        return Array(out, depth + 1);
      case '"':
        return String(out);
      case 't':
        return Literal("true", out);
      case 'f':
        return Literal("false", out);
      case 'n':
        return Literal("null", out);
      default:
        return Number(out);
    }
  }

  // A number value, scanned once: a plain integer of at most 15 digits is
  // copied as it is written; any other (a fraction, an exponent, more
  // digits) goes through its double to ECMAScript's form (jcs_number.h), or
  // to the general path.
  bool Number(ByteSink* out) {
    size_t start = i_;
    bool negative = Eat('-');
    if (Peek() < '0' || Peek() > '9') return false;
    if (!Eat('0')) {
      while (Peek() >= '0' && Peek() <= '9') i_++;
    }
    size_t integer_digits = i_ - start - (negative ? 1 : 0);
    bool plain = true;
    if (Eat('.')) {
      if (!Digits()) return false;
      plain = false;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      i_++;
      if (!Eat('+')) Eat('-');
      if (!Digits()) return false;
      plain = false;
    }
    size_t end = i_;
    if (plain) {
      if (negative && s_[start + 1] == '0') return false;  // -0: JCS writes 0, which the general path does
      if (integer_digits <= kMaxIntegerDigits) {
        uint8_t* p = out->Room(end - start);
        for (size_t k = start; k < end; k++) *p++ = uint8_t(s_[k]);
        out->Commit(p);
        return true;
      }
    }
    // Long texts (no double needs more than a few dozen characters) are the general path's.
    constexpr size_t kMaxNumberUnits = 64;
    if (end - start > kMaxNumberUnits) return false;
    char text[kMaxNumberUnits];
    for (size_t k = start; k < end; k++) text[k - start] = char(s_[k]);
    return CanonicalNumber(text, end - start, out);
  }

  // One or more decimal digits.
  bool Digits() {
    if (Peek() < '0' || Peek() > '9') return false;
    while (Peek() >= '0' && Peek() <= '9') i_++;
    return true;
  }

  // A plain integer literal, which is also its canonical form.
  bool Integer(ByteSink* out) {
    size_t start = i_;
    bool negative = Eat('-');
    if (Peek() < '0' || Peek() > '9') return false;
    if (Eat('0')) {
      if (negative) return false;  // -0: JCS writes 0, which the general path does
    } else {
      while (Peek() >= '0' && Peek() <= '9') i_++;
    }
    if (i_ - start - (negative ? 1 : 0) > kMaxIntegerDigits) return false;
    char16_t next = Peek();
    if (next == '.' || next == 'e' || next == 'E') return false;
    uint8_t* p = out->Room(i_ - start);
    for (size_t k = start; k < i_; k++) *p++ = uint8_t(s_[k]);
    out->Commit(p);
    return true;
  }

  // A string of printable ASCII without escapes: the units between its
  // quotes (`span`) are then exactly the string JSON.parse gives.
  bool PlainAsciiString(Span* span) {
    bool escaped = false;
    if (!RawString(span, &escaped) || escaped) return false;
    for (size_t k = span->start; k < span->end; k++) {
      if (s_[k] < 0x20 || s_[k] > 0x7e) return false;
    }
    return true;
  }

  // The id's JSON text as the reply repeats it: a plain integer, or a string of printable ASCII without escapes.
  bool Id(Span* span) {
    span->start = i_;
    if (Peek() == '"') {
      Span inner;
      if (!PlainAsciiString(&inner)) return false;
    } else {
      ByteSink& sink = levels_[0].values;
      sink.Clear();
      if (!Integer(&sink)) return false;
    }
    span->end = i_;
    return true;
  }

  // The CAR object; its action_type and agent_id spans come back too.
  bool Car(ByteSink* out, Span* action, Span* agent) {
    action_ = action;
    agent_ = agent;
    action->start = action->end = agent->start = agent->end = 0;
    if (Peek() != '{' || !Object(out, 1)) return false;
    // Both present, non-empty, and free of escapes (the spans are then their values).
    return action->end > action->start && agent->end > agent->start;
  }

 private:
  template <size_t N>
  bool Literal(const char (&word)[N], ByteSink* out) {
    constexpr size_t m = N - 1;
    if (n_ - i_ < m) return false;
    for (size_t k = 0; k < m; k++) {
      if (s_[i_ + k] != char16_t(word[k])) return false;
    }
    i_ += m;
    out->Append(reinterpret_cast<const uint8_t*>(word), m);
    return true;
  }

  bool String(ByteSink* out) {
    Span span;
    bool escaped = false;
    if (!RawString(&span, &escaped)) return false;
    if (!escaped) return PutJcsString(out, s_ + span.start, span.end - span.start);
    decoded_.clear();
    return Decode(span, &decoded_) && PutJcsString(out, decoded_.data(), decoded_.size());
  }

  bool Array(ByteSink* out, int depth) {
    if (depth > kMaxDepth) return false;
    i_++;  // '['
    Ws();
    out->Put('[');
    if (!Eat(']')) {
      for (;;) {
        Ws();
        if (!Value(out, depth)) return false;
        Ws();
        if (Eat(',')) {
          out->Put(',');
          continue;
        }
        if (Eat(']')) break;
        return false;
      }
    }
    out->Put(']');
    return out->size() <= kMaxCanonicalBytes;
  }

  // An object: its members read into this depth's Level, then written in
  // JCS order. (Reading straight into `out` when the keys already arrive in
  // order was tried: clients rarely send them so, and the second reading it
  // then needs cost more than it saved.)
  bool Object(ByteSink* out, int depth) {
    if (depth > kMaxDepth) return false;
    Level& level = levels_[size_t(depth)];  // levels_ never grows while parsing: references stay valid
    level.keys.clear();
    level.values.Clear();
    level.members.clear();
    i_++;  // '{'
    Ws();
    if (!Eat('}')) {
      for (;;) {
        Ws();
        Span key;
        bool escaped = false;
        if (!RawString(&key, &escaped)) return false;
        uint32_t key_at = uint32_t(level.keys.size());
        if (escaped) {
          if (!Decode(key, &level.keys)) return false;
        } else {
          level.keys.insert(level.keys.end(), s_ + key.start, s_ + key.end);
        }
        uint32_t key_len = uint32_t(level.keys.size()) - key_at;
        Ws();
        if (!Eat(':')) return false;
        Ws();
        size_t value_start = i_;
        uint32_t value_at = uint32_t(level.values.size());
        if (!Value(&level.values, depth)) return false;
        if (depth == 1 && !NoteCarField(level.keys.data() + key_at, key_len, value_start)) return false;
        level.members.push_back({key_at, key_len, value_at, uint32_t(level.values.size()) - value_at});
        Ws();
        if (Eat(',')) continue;
        if (Eat('}')) break;
        return false;
      }
    }
    // JCS order: keys by UTF-16 units. Equal neighbours are a duplicate key,
    // which JSON.parse resolves (last wins) and this path leaves to it.
    const char16_t* keys = level.keys.data();
    const Member* members = level.members.data();
    level.order.resize(level.members.size());
    for (size_t k = 0; k < level.order.size(); k++) level.order[k] = uint32_t(k);
    auto less = [&](uint32_t a, uint32_t b) {
      const Member& x = members[a];
      const Member& y = members[b];
      return std::lexicographical_compare(keys + x.key_at, keys + x.key_at + x.key_len, keys + y.key_at, keys + y.key_at + y.key_len);
    };
    std::sort(level.order.begin(), level.order.end(), less);
    out->Put('{');
    for (size_t k = 0; k < level.order.size(); k++) {
      const Member& m = members[level.order[k]];
      if (k > 0) {
        if (!less(level.order[k - 1], level.order[k])) return false;  // a duplicate key
        out->Put(',');
      }
      if (!PutJcsString(out, keys + m.key_at, m.key_len)) return false;
      out->Put(':');
      out->Append(level.values.data() + m.value_at, m.value_len);
      if (out->size() > kMaxCanonicalBytes) return false;
    }
    out->Put('}');
    return out->size() <= kMaxCanonicalBytes;
  }

  // A top-level CAR member: where action_type's and agent_id's values lie.
  // They must be strings without escapes so that the TypeScript side can
  // slice them from the line as they are.
  bool NoteCarField(const char16_t* key, size_t key_len, size_t value_start) {
    Span* target = Is(key, key_len, "action_type") ? action_ : Is(key, key_len, "agent_id") ? agent_ : nullptr;
    if (target == nullptr) return true;
    if (s_[value_start] != '"') return false;
    for (size_t k = value_start + 1; k + 1 < i_; k++) {
      if (s_[k] == '\\') return false;
    }
    target->start = value_start + 1;
    target->end = i_ - 1;
    return true;
  }

  const char16_t* s_;
  size_t n_;
  size_t i_ = 0;
  std::vector<Level>& levels_;
  std::vector<char16_t> decoded_;
  Span* action_ = nullptr;
  Span* agent_ = nullptr;
};

}  // namespace jcs_reader
}  // namespace gk
