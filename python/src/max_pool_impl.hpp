// The max pool's plane kernel written once over a vector width (Lanes<4>: SSE2, Lanes<8>: AVX2,
// Lanes<16>: AVX-512); included only by max_pool__<isa>.cpp, each compiled with its own flags, so
// everything here has internal linkage (no per-ISA copy may stand in for another's at link time).
//
// Every step is torch's own update, `m = (v > m || isnan(v)) ? v : m` (ATen's max pool kernel):
// over a row left to right, then over the rows top to bottom, which is torch's row-major scan of the
// window. So ties keep the first value (the sign of a zero) and a NaN the last one: bit for bit.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "max_pool.hpp"

namespace fastconv_python {
namespace {

// Lanes<W>: W floats per vector, R the register type.
template <int W>
struct Lanes;

template <>
struct Lanes<4> {
  using R = __m128;
  static constexpr int64_t n = 4;
  static __m128 load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, __m128 v) { _mm_storeu_ps(p, v); }
  // maxps(v, m) is v > m ? v : m, whose unordered case keeps m; a NaN v is taken by the select.
  static __m128 update(__m128 m, __m128 v) {
    const __m128 nan = _mm_cmpunord_ps(v, v);
    return _mm_or_ps(_mm_and_ps(nan, v), _mm_andnot_ps(nan, _mm_max_ps(v, m)));
  }
  static __m128 evens(const float* p) {  // p[0], p[2], p[4], p[6]
    return _mm_shuffle_ps(_mm_loadu_ps(p), _mm_loadu_ps(p + 4), _MM_SHUFFLE(2, 0, 2, 0));
  }
};

#if defined(__AVX2__)
template <>
struct Lanes<8> {
  using R = __m256;
  static constexpr int64_t n = 8;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
  static __m256 update(__m256 m, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static __m256 evens(const float* p) {  // p[0], p[2], ..., p[14]
    const __m256 pairs = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), _MM_SHUFFLE(3, 1, 2, 0)));
  }
};
#endif

#if defined(__AVX512F__)
template <>
struct Lanes<16> {
  using R = __m512;
  static constexpr int64_t n = 16;
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
  static __m512 update(__m512 m, __m512 v) {
    return _mm512_mask_mov_ps(_mm512_max_ps(v, m), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
  }
  static __m512 evens(const float* p) {  // p[0], p[2], ..., p[30]
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
  }
};
#endif

inline float update_scalar(float m, float v) { return (v > m || v != v) ? v : m; }

// t[q] = the window's row maximum at q * sw, for q < count. Reads row[0, need) with
// need = (count - 1) * sw + kw; `readable` >= need floats may be read (the vectors of stride 2
// read up to one float past the last window, and only where that float is readable).
template <int W>
void row_maxima(const float* row, int64_t readable, float* t, int64_t count, int64_t sw, int64_t kw) {
  using L = Lanes<W>;
  using R = typename L::R;
  int64_t q = 0;
  if (sw == 1 && count >= L::n) {
    const auto at = [&](int64_t q0) {
      R m = L::load(row + q0);
      for (int64_t j = 1; j < kw; ++j) m = L::update(m, L::load(row + q0 + j));
      L::store(t + q0, m);
    };
    for (; q + L::n <= count; q += L::n) at(q);
    if (q < count) at(count - L::n), q = count;  // the last vector again, overlapping: same values
  } else if (sw == 2 && count >= L::n) {
    const auto fits = [&](int64_t q0) { return 2 * q0 + kw - 1 + 2 * L::n <= readable; };
    const auto at = [&](int64_t q0) {
      R m = L::evens(row + 2 * q0);
      for (int64_t j = 1; j < kw; ++j) m = L::update(m, L::evens(row + 2 * q0 + j));
      L::store(t + q0, m);
    };
    for (; q + L::n <= count && fits(q); q += L::n) at(q);
    if (q < count && fits(count - L::n)) at(count - L::n), q = count;
  }
  for (; q < count; ++q) {
    float m = row[q * sw];
    for (int64_t j = 1; j < kw; ++j) m = update_scalar(m, row[q * sw + j]);
    t[q] = m;
  }
}

// One plane: the row maxima of every input row into `maxima` (H x Q), then the max down the
// kernel's rows (PoolPlaneFn).
template <int W>
void pool_plane(const float* x, float* y, const PoolShape& s, float* padded, float* maxima) {
  using L = Lanes<W>;
  using R = typename L::R;
  if (s.pw == 0 && s.W == s.Q * s.sw && s.kw <= s.sw) {
    // No window crosses a row and nothing is skipped: the plane's rows are one long row.
    row_maxima<W>(x, s.H * s.W, maxima, s.H * s.Q, s.sw, s.kw);
  } else {
    for (int64_t h = 0; h < s.H; ++h) {
      std::copy(x + h * s.W, x + (h + 1) * s.W, padded + s.pw);
      row_maxima<W>(padded, s.W + 2 * s.pw + kRowSlack, maxima + h * s.Q, s.Q, s.sw, s.kw);
    }
  }
  for (int64_t p = 0; p < s.P; ++p) {
    float* out = y + p * s.Q;
    const int64_t first = std::max<int64_t>(0, s.ph - p * s.sh);  // taps above the input are padding
    const int64_t last = std::min(s.kh, s.H + s.ph - p * s.sh);   // and so are those below it
    const float* top = maxima + (p * s.sh - s.ph + first) * s.Q;
    int64_t q = 0;
    if (s.Q >= L::n) {
      const auto at = [&](int64_t q0) {
        R m = L::load(top + q0);
        for (int64_t i = first + 1; i < last; ++i) m = L::update(m, L::load(top + (i - first) * s.Q + q0));
        L::store(out + q0, m);
      };
      for (; q + L::n <= s.Q; q += L::n) at(q);
      if (q < s.Q) at(s.Q - L::n), q = s.Q;
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
