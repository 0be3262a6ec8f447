// A growable byte buffer that is written through raw pointers: room is made
// ahead of a write and the end committed after it, with no zero-filling of
// room that is never used (std::vector::resize fills it).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace gk {

class ByteSink {
 public:
  size_t size() const { return len_; }
  const uint8_t* data() const { return buf_.data(); }
  void Clear() { len_ = 0; }
  // Drops everything after the first `n` bytes (n <= size()).
  void Truncate(size_t n) { len_ = n; }
  // At least `n` writable bytes at the end; valid until the next Room.
  uint8_t* Room(size_t n) {
    if (buf_.size() - len_ < n) buf_.resize(std::max(buf_.size() * 2, len_ + n + 256));
    return buf_.data() + len_;
  }
  // Takes the bytes written up to `end` (a pointer from the last Room).
  void Commit(const uint8_t* end) { len_ = size_t(end - buf_.data()); }
  void Put(uint8_t b) { *Room(1) = b; len_++; }
  void Append(const uint8_t* p, size_t n) {
    std::memcpy(Room(n), p, n);
    len_ += n;
  }

 private:
  std::vector<uint8_t> buf_;
  size_t len_ = 0;
};

}  // namespace gk
