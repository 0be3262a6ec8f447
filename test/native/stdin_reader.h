// Reading the binary cases the tests pipe into the host-build harnesses
// (little-endian, as the test writes them). A short read ends the process
// with status 2.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

inline void ReadExact(void* p, size_t n) {
  if (n > 0 && std::fread(p, 1, n, stdin) != n) {
    std::fprintf(stderr, "short input\n");
    std::exit(2);
  }
}

inline uint32_t ReadU32() {
  uint32_t v = 0;
  ReadExact(&v, sizeof v);
  return v;
}

// A u32 element count, then the elements.
template <typename T>
std::vector<T> ReadArray() {
  std::vector<T> v(ReadU32());
  ReadExact(v.data(), v.size() * sizeof(T));
  return v;
}
