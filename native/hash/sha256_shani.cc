// SHA-256 block compression with the x86 SHA extensions (SHA-NI). Built with a
// per-function target attribute so the rest of the addon stays baseline x86-64;
// it only runs after CPUID says the instructions exist.
#include "hash/sha256.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER))
#define GK_HAVE_SHANI_BUILD 1
#include <immintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define GK_TARGET_SHANI
#else
#include <cpuid.h>
#define GK_TARGET_SHANI __attribute__((target("sha,sse4.1,ssse3")))
#endif
#endif

namespace gk {

#ifdef GK_HAVE_SHANI_BUILD

namespace {



void Cpuid(int leaf, int subleaf, unsigned regs[4]) {
#if defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuidex(r, leaf, subleaf);
  for (int i = 0; i < 4; ++i) regs[i] = unsigned(r[i]);
#else
  __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
#endif
}

}  // namespace

bool Sha256ShaNiAvailable() {
  unsigned regs[4];
  Cpuid(0, 0, regs);
  if (regs[0] < 7) return false;
  Cpuid(1, 0, regs);
  bool ssse3 = regs[2] & (1u << 9);
  bool sse41 = regs[2] & (1u << 19);
  Cpuid(7, 0, regs);
  bool sha = regs[1] & (1u << 29);
  return ssse3 && sse41 && sha;
}

GK_TARGET_SHANI
void Sha256CompressShaNi(uint32_t state[8], const uint8_t* blocks, size_t nblocks) {
  // Message bytes are big-endian words; this shuffle byte-swaps each lane.
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);

  // The instructions want the state split as ABEF / CDGH.
  __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  __m128i cdab = _mm_shuffle_epi32(abcd, 0xB1);
  __m128i hgfe = _mm_shuffle_epi32(efgh, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, hgfe, 8);
  __m128i cdgh = _mm_blend_epi16(hgfe, cdab, 0xF0);

  for (; nblocks > 0; --nblocks, blocks += kSha256BlockBytes) {
    const __m128i abef_in = abef;
    const __m128i cdgh_in = cdgh;
    __m128i w[4];
    for (int i = 0; i < 16; ++i) {
      __m128i& cur = w[i & 3];
      if (i < 4) {
        cur = _mm_shuffle_epi8(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + 16 * i)), bswap);
      } else {
        // W[t..t+3] from W[t-16..t-1]: msg1 adds sigma0, the alignr supplies
        // W[t-7..t-4], msg2 adds sigma1 (which depends on the new words).
        const __m128i& prev1 = w[(i - 1) & 3];
        const __m128i& prev2 = w[(i - 2) & 3];
        const __m128i& prev3 = w[(i - 3) & 3];
        __m128i t = _mm_sha256msg1_epu32(cur, prev3);
        t = _mm_add_epi32(t, _mm_alignr_epi8(prev1, prev2, 4));
        cur = _mm_sha256msg2_epu32(t, prev1);
      }
      __m128i msg = _mm_add_epi32(cur, _mm_load_si128(reinterpret_cast<const __m128i*>(kSha256RoundConstants + 4 * i)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
      msg = _mm_shuffle_epi32(msg, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, msg);
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }

  __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
  __m128i hgef = _mm_alignr_epi8(dchg, feba, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), dcba);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), hgef);
}

#else  // no SHA-NI build on this target

bool Sha256ShaNiAvailable() { return false; }
void Sha256CompressShaNi(uint32_t state[8], const uint8_t* blocks, size_t nblocks) {
  Sha256CompressPortable(state, blocks, nblocks);
}

#endif

}  // namespace gk
