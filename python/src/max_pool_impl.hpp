// The max pool's plane kernel written once over xsimd (batch<float, Arch>: 4, 8 or 16 lanes), as the
// library's kernels; only the stride-2 deinterleave is per instruction set. Included only by
// max_pool__<isa>.cpp, each compiled with its own flags, so everything here has internal linkage (no
// per-ISA copy may stand in for another's at link time).
//
// Every step is torch's own update, `m = (v > m || isnan(v)) ? v : m` (ATen's max pool kernel):
// over a row left to right, then over the rows top to bottom, which is torch's row-major scan of the
// window. So ties keep the first value (the sign of a zero) and a NaN the last one: bit for bit.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <xsimd/xsimd.hpp>

#include "max_pool.hpp"

namespace fastconv_python {
namespace {

// xsimd's max(v, m) is x86's maxps, v > m ? v : m, whose unordered case keeps m; a NaN v is taken by
// the select.
template <class V>
inline V update(const V& m, const V& v) {
  return xsimd::select(xsimd::isnan(v), v, xsimd::max(v, m));
}

// evens(p): p[0], p[2], ..., p[2 * lanes - 2], from two loads.
template <class Arch>
struct Evens;

template <>
struct Evens<xsimd::sse2> {
  static __m128 at(const float* p) {
    return _mm_shuffle_ps(_mm_loadu_ps(p), _mm_loadu_ps(p + 4), _MM_SHUFFLE(2, 0, 2, 0));
  }
};

#if defined(__AVX2__)
template <>
struct Evens<xsimd::fma3<xsimd::avx2>> {
  static __m256 at(const float* p) {
    const __m256 pairs = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), _MM_SHUFFLE(3, 1, 2, 0)));
  }
};
#endif

#if defined(__AVX512F__)
template <>
struct Evens<xsimd::avx512f> {
  static __m512 at(const float* p) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
  }
};
#endif

inline float update_scalar(float m, float v) { return (v > m || v != v) ? v : m; }

// t[q] = the window's row maximum at q * sw, for q < count. Reads row[0, need) with
// need = (count - 1) * sw + kw; `readable` >= need floats may be read (the vectors of stride 2
// read up to one float past the last window, and only where that float is readable).
template <class Arch>
void row_maxima(const float* row, int64_t readable, float* t, int64_t count, int64_t sw, int64_t kw) {
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t n = int64_t(V::size);
  int64_t q = 0;
  if (sw == 1 && count >= n) {
    const auto at = [&](int64_t q0) {
      V m = V::load_unaligned(row + q0);
      for (int64_t j = 1; j < kw; ++j) m = update(m, V::load_unaligned(row + q0 + j));
      m.store_unaligned(t + q0);
    };
    for (; q + n <= count; q += n) at(q);
    if (q < count) at(count - n), q = count;  // the last vector again, overlapping: same values
  } else if (sw == 2 && count >= n) {
    const auto fits = [&](int64_t q0) { return 2 * q0 + kw - 1 + 2 * n <= readable; };
    const auto at = [&](int64_t q0) {
      V m = Evens<Arch>::at(row + 2 * q0);
      for (int64_t j = 1; j < kw; ++j) m = update(m, V(Evens<Arch>::at(row + 2 * q0 + j)));
      m.store_unaligned(t + q0);
    };
    for (; q + n <= count && fits(q); q += n) at(q);
    if (q < count && fits(count - n)) at(count - n), q = count;
  }
  for (; q < count; ++q) {
    float m = row[q * sw];
    for (int64_t j = 1; j < kw; ++j) m = update_scalar(m, row[q * sw + j]);
    t[q] = m;
  }
}

// One plane: the row maxima of every input row into `maxima` (H x Q), then the max down the
// kernel's rows (PoolPlaneFn).
template <class Arch>
void pool_plane(const float* x, float* y, const PoolShape& s, float* padded, float* maxima) {
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t n = int64_t(V::size);
  if (s.pw == 0 && s.W == s.Q * s.sw && s.kw <= s.sw) {
    // No window crosses a row and nothing is skipped: the plane's rows are one long row.
    row_maxima<Arch>(x, s.H * s.W, maxima, s.H * s.Q, s.sw, s.kw);
  } else {
    for (int64_t h = 0; h < s.H; ++h) {
      std::copy(x + h * s.W, x + (h + 1) * s.W, padded + s.pw);
      row_maxima<Arch>(padded, padded_row_floats(s), maxima + h * s.Q, s.Q, s.sw, s.kw);
    }
  }
  for (int64_t p = 0; p < s.P; ++p) {
    float* out = y + p * s.Q;
    const int64_t first = std::max<int64_t>(0, s.ph - p * s.sh);  // taps above the input are padding
    const int64_t last = std::min(s.kh, s.H + s.ph - p * s.sh);   // and so are those below it
    const float* top = maxima + (p * s.sh - s.ph + first) * s.Q;
    int64_t q = 0;
    if (s.Q >= n) {
      const auto at = [&](int64_t q0) {
        V m = V::load_unaligned(top + q0);
        for (int64_t i = first + 1; i < last; ++i) m = update(m, V::load_unaligned(top + (i - first) * s.Q + q0));
        m.store_unaligned(out + q0);
      };
      for (; q + n <= s.Q; q += n) at(q);
      if (q < s.Q) at(s.Q - n), q = s.Q;
    }
    for (; q < s.Q; ++q) {
      float m = top[q];
      for (int64_t i = first + 1; i < last; ++i) m = update_scalar(m, top[(i - first) * s.Q + q]);
      out[q] = m;
    }
  }
}

}  // namespace
}  // namespace fastconv_python
