// The shape both content memos share (native/hash/form_memo.cc, the params memo in
// native/ipc/gate_line.cc): a per-thread table of sets of two slots, the way to
// replace next in each set, and hit/miss counts for the tests. What a slot
// holds and how its key is compared is each memo's own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace gk {

template <typename Slot, size_t kSets>
struct TwoWayMemo {
  Slot slots[kSets][2];
  uint8_t victim[kSets] = {};  // which way of a set is replaced next
  uint64_t hits = 0;
  uint64_t misses = 0;

  // The slot of `set` to overwrite now (the two ways take turns).
  Slot& Replace(size_t set) {
    Slot& s = slots[set][victim[set]];
    victim[set] ^= 1;
    return s;
  }

  // This thread's table, allocated on first use (no locking: one per thread).
  static TwoWayMemo& ForThisThread() {
    thread_local std::unique_ptr<TwoWayMemo> memo;
    if (!memo) memo = std::make_unique<TwoWayMemo>();
    return *memo;
  }
};

}  // namespace gk
