#include "hash/seeded_hash.h"

#include <random>

namespace gk {

uint64_t ProcessHashSeed() {
  // std::random_device reads the OS CSPRNG on the platforms we build for.
  static const uint64_t seed = [] {
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ uint64_t(rd());
  }();
  return seed;
}

}  // namespace gk
