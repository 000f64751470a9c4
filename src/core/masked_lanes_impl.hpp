// Vector loads and stores of a range of lanes, written once over the xsimd batch type. Memory
// outside the range is never touched (masked loads and stores on AVX-512 and AVX2, a scalar copy
// on SSE2): rows are read in place up to their edges. Included only by per-ISA translation units,
// each compiled with its own flags.
#pragma once

#include <cstdint>
#include <immintrin.h>
#include <xsimd/xsimd.hpp>

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// std::min in per-ISA code: an out-of-line std::min<long> would be a weak symbol compiled with this
// unit's flags, which the linker may keep for generic code too (tests/check_isa_symbols.sh).
inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// Lanes [lo, hi) from p[lo..hi), zeros elsewhere; memory outside [p + lo, p + hi) is not touched.
template <class V>
V load_masked(const float* p, int lo, int hi) {
  constexpr int L = int(V::size);
#if defined(__AVX512F__)
  if constexpr (L == 16) {
    const __mmask16 m = __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
    return V(_mm512_maskz_loadu_ps(m, p));
  }
#endif
#if defined(__AVX2__)
  if constexpr (L == 8) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(hi), iota),
                                       _mm256_cmpgt_epi32(iota, _mm256_set1_epi32(lo - 1)));
    return V(_mm256_maskload_ps(p, m));
  }
#endif
  alignas(64) float tmp[L] = {};
  for (int l = lo; l < hi; ++l) tmp[l] = p[l];
  return V::load_aligned(tmp);
}

// The first n lanes of v to p.
template <class V>
void store_lanes(float* p, const V& v, int n) {
  constexpr int L = int(V::size);
  if (n == L) {
    v.store_unaligned(p);
    return;
  }
#if defined(__AVX512F__)
  if constexpr (L == 16) {
    _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (L == 8) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(p, m, v);
    return;
  }
#endif
  alignas(64) float tmp[L];
  v.store_aligned(tmp);
  for (int l = 0; l < n; ++l) p[l] = tmp[l];
}

template <class V>
V load_lanes(const float* p, int n) {
  return n == int(V::size) ? V::load_unaligned(p) : load_masked<V>(p, 0, n);
}

// Lanes l of row[start + l], zeros where start + l lies outside [0, n).
template <class V>
V load_range(const float* row, int64_t start, int64_t n) {
  constexpr int L = int(V::size);
  if (start >= 0 && start + L <= n) return V::load_unaligned(row + start);
  if (start + L <= 0 || start >= n) return V(0.0f);
  const int lo = start < 0 ? int(-start) : 0;
  const int hi = n - start < L ? int(n - start) : L;
  return load_masked<V>(row + start, lo, hi);
}

// Loads (and stores) of a vector whose lanes [lo, hi) lie inside the row, the same for every row of
// a column.
template <class V>
struct RangeLoad {
  static constexpr int L = int(V::size);
  int lo, hi;
#if defined(__AVX512F__)
  __mmask16 m16;
#endif
#if defined(__AVX2__)
  __m256i m8;
#endif
  RangeLoad() = default;  // for arrays filled later
  RangeLoad(int lo_, int hi_) : lo(lo_), hi(hi_) {
#if defined(__AVX512F__)
    if constexpr (L == 16) m16 = __mmask16(hi > lo ? ((1u << hi) - 1) & ~((1u << lo) - 1) : 0);
#endif
#if defined(__AVX2__)
    if constexpr (L == 8) {
      const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      m8 = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(hi), iota),
                            _mm256_cmpgt_epi32(iota, _mm256_set1_epi32(lo - 1)));
    }
#endif
  }
  // The lanes l of row[c + l] that lie inside the row's [0, n), wherever c is (padding can put a
  // vector's first column anywhere, left of the row or past its end).
  __attribute__((always_inline)) static RangeLoad inside_row(int64_t c, int64_t n) {
    const int64_t l = -c, h = n - c;
    const int lo_ = l <= 0 ? 0 : l >= L ? L : int(l);
    const int hi_ = h <= 0 ? 0 : h >= L ? L : int(h);
    return RangeLoad(lo_, hi_ < lo_ ? lo_ : hi_);
  }
  __attribute__((always_inline)) V load(const float* p) const {
#if defined(__AVX512F__)
    if constexpr (L == 16) return V(_mm512_maskz_loadu_ps(m16, p));
#endif
#if defined(__AVX2__)
    if constexpr (L == 8) return V(_mm256_maskload_ps(p, m8));
#endif
    if (lo == 0 && hi == L) return V::load_unaligned(p);
    return hi > lo ? load_masked<V>(p, lo, hi) : V(0.0f);
  }
  // Lanes [lo, hi) of v to p[lo..hi); nothing else is written.
  __attribute__((always_inline)) void store(float* p, const V& v) const {
    if (lo == 0 && hi == L) {
      v.store_unaligned(p);
      return;
    }
#if defined(__AVX512F__)
    if constexpr (L == 16) {
      _mm512_mask_storeu_ps(p, m16, v);
      return;
    }
#endif
#if defined(__AVX2__)
    if constexpr (L == 8) {
      _mm256_maskstore_ps(p, m8, v);
      return;
    }
#endif
    alignas(64) float tmp[L];
    v.store_aligned(tmp);
    for (int l = lo; l < hi; ++l) p[l] = tmp[l];
  }
};

}  // namespace
}  // namespace fastconv::detail
