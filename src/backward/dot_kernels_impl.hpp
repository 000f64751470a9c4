// The dot-product tiles written once over the xsimd architecture; included only by the per-ISA
// translation units (dot_kernels__<isa>.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <xsimd/xsimd.hpp>

#include "backward/dot_kernels.hpp"
#include "core/masked_lanes_impl.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// Not std::clamp or std::min/max of a list: out-of-line, those are weak symbols shared by every
// unit, and the linker may keep this unit's AVX-512 copy for all (tests: isa_objects_share_no_code).
inline int64_t clamp_to(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }
inline int64_t min_of(int64_t a, int64_t b, int64_t c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }
inline int64_t max_of(int64_t a, int64_t b, int64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

template <class Arch, int MA, int NB>
void dot_tile(int64_t len, const float* const* a, const float* const* b, float* c, int64_t ldc, bool accumulate) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  // MA x NB accumulators; fewer than 8 (two FMA pipes of latency 4), two sets (two steps of L per
  // iteration) hide the FMA latency.
  constexpr int U = MA * NB < 8 ? 2 : 1;
  V acc[U][MA][NB];
  for (int u = 0; u < U; ++u)
    for (int i = 0; i < MA; ++i)
      for (int j = 0; j < NB; ++j) acc[u][i][j] = V(0.0f);
  for (int64_t f = 0; f < len; f += U * L) {
    for (int u = 0; u < U; ++u) {
      V bv[NB];
      for (int j = 0; j < NB; ++j) bv[j] = V::load_unaligned(b[j] + f + u * L);
      for (int i = 0; i < MA; ++i) {
        const V av = V::load_unaligned(a[i] + f + u * L);
        for (int j = 0; j < NB; ++j) acc[u][i][j] = xsimd::fma(av, bv[j], acc[u][i][j]);
      }
    }
  }
  for (int i = 0; i < MA; ++i)
    for (int j = 0; j < NB; ++j) {
      V sum = acc[0][i][j];
      for (int u = 1; u < U; ++u) sum += acc[u][i][j];
      const float d = xsimd::hadd(sum);
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + d : d;
    }
}

template <class Arch, int NS, bool Tail>
void depthwise_taps_vector(int64_t rows, int64_t q0, int64_t width, const float* dy, int64_t ldy, const float* x,
                           int64_t ldx, const int64_t* shift, float* out) {
  using V = xsimd::batch<float, Arch>;
  using M = xsimd::batch_bool<float, Arch>;
  constexpr int L = int(V::size);
  M keep(true);
  if (Tail) {
    alignas(64) float index[L];
    for (int l = 0; l < L; ++l) index[l] = float(l);
    keep = V::load_aligned(index) < V(float(width - q0));
  }
  auto load = [&](const float* p) {
    const V v = V::load_unaligned(p + q0);
    return Tail ? xsimd::select(keep, v, V(0.0f)) : v;
  };
  // Two sets of accumulators (even and odd rows): NS alone would wait on the FMA latency.
  V acc[2][NS];
  for (int u = 0; u < 2; ++u)
    for (int j = 0; j < NS; ++j) acc[u][j] = V(0.0f);
  int64_t i = 0;
  for (; i + 2 <= rows; i += 2)
    for (int u = 0; u < 2; ++u) {
      const V d = load(dy + (i + u) * ldy);
      const float* xr = x + (i + u) * ldx;
      for (int j = 0; j < NS; ++j) acc[u][j] = xsimd::fma(d, load(xr + shift[j]), acc[u][j]);
    }
  if (i < rows) {
    const V d = load(dy + i * ldy);
    const float* xr = x + i * ldx;
    for (int j = 0; j < NS; ++j) acc[0][j] = xsimd::fma(d, load(xr + shift[j]), acc[0][j]);
  }
  for (int j = 0; j < NS; ++j) out[j] += xsimd::hadd(acc[0][j] + acc[1][j]);
}

template <class Arch, int NS>
void depthwise_taps(int64_t rows, int64_t width, const float* dy, int64_t ldy, const float* x, int64_t ldx,
                    const int64_t* shift, float* out) {
  constexpr int64_t L = int64_t(xsimd::batch<float, Arch>::size);
  for (int j = 0; j < NS; ++j) out[j] = 0.0f;
  int64_t q0 = 0;
  for (; q0 + L <= width; q0 += L) depthwise_taps_vector<Arch, NS, false>(rows, q0, width, dy, ldy, x, ldx, shift, out);
  if (q0 < width) depthwise_taps_vector<Arch, NS, true>(rows, q0, width, dy, ldy, x, ldx, shift, out);
}

// One vector of lanes [q0, q0 + L) of Depthwise3x3 down the rows. Edge: some lane lies outside a
// tap's columns or past the width, so every load is masked (the masks planned once for the column).
template <class V, bool Edge>
void depthwise_3x3_column(const Depthwise3x3& a, int64_t q0, V (&sums)[10]) {
  constexpr int64_t L = int64_t(V::size);
  V acc[10];  // a local copy: through the reference GCC stores every accumulator after each FMA
  for (int j = 0; j < 10; ++j) acc[j] = sums[j];
  auto lanes = [&](int64_t begin, int64_t end) {
    return RangeLoad<V>(int(clamp_to(begin - q0, 0, L)), int(clamp_to(end - q0, 0, L)));
  };
  const RangeLoad<V> dy_lanes = lanes(0, a.width);
  const RangeLoad<V> x_lanes[3] = {lanes(a.col_begin[0], std::min(a.col_end[0], a.width)),
                                   lanes(a.col_begin[1], std::min(a.col_end[1], a.width)),
                                   lanes(a.col_begin[2], std::min(a.col_end[2], a.width))};
  auto row = [&](int64_t i, bool check) {
    const V d = Edge ? dy_lanes.load(a.dy + i * a.ldy + q0) : V::load_unaligned(a.dy + i * a.ldy + q0);
    acc[9] += d;
    for (int r = 0; r < 3; ++r) {
      if (check && (i < a.row_begin[r] || i >= a.row_end[r])) continue;
      const float* xr = a.x + (i * a.ldx + a.tap_row[r] + q0);
      for (int s = 0; s < 3; ++s)
        acc[r * 3 + s] = xsimd::fma(
            d, Edge ? x_lanes[s].load(xr + a.shift[s]) : V::load_unaligned(xr + a.shift[s]), acc[r * 3 + s]);
    }
  };
  // Rows where every tap row is inside need no check.
  const int64_t inner_begin = std::min(a.rows, max_of(a.row_begin[0], a.row_begin[1], a.row_begin[2]));
  const int64_t inner_end = std::max(inner_begin, min_of(a.row_end[0], a.row_end[1], a.row_end[2]));
  for (int64_t i = 0; i < inner_begin; ++i) row(i, true);
  for (int64_t i = inner_begin; i < inner_end; ++i) row(i, false);
  for (int64_t i = inner_end; i < a.rows; ++i) row(i, true);
  for (int j = 0; j < 10; ++j) sums[j] = acc[j];
}

template <class Arch>
void depthwise_3x3(const Depthwise3x3& a, float* out) {
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t L = int64_t(V::size);
  V acc[10];
  for (int j = 0; j < 10; ++j) acc[j] = V(0.0f);
  // Lanes inside every tap's columns: their vectors load unmasked.
  const int64_t inside_begin = std::max<int64_t>(0, max_of(a.col_begin[0], a.col_begin[1], a.col_begin[2]));
  const int64_t inside_end = std::min(a.width, min_of(a.col_end[0], a.col_end[1], a.col_end[2]));
  for (int64_t q0 = 0; q0 < a.width; q0 += L) {
    if (q0 >= inside_begin && q0 + L <= inside_end)
      depthwise_3x3_column<V, false>(a, q0, acc);
    else
      depthwise_3x3_column<V, true>(a, q0, acc);
  }
  for (int j = 0; j < 10; ++j) out[j] = xsimd::hadd(acc[j]);
}

template <class Arch, int KV, int NT>
void outer_tile(const OuterTile& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  V acc[NT][KV];
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < KV; ++v) acc[t][v] = a.accumulate ? V::load_unaligned(a.acc[t] + v * L) : V(0.0f);
  for (int64_t i = 0; i < a.rows; ++i) {
    const float* d = a.dyt + i * a.dyt_row;
    const float* x[NT];
    for (int t = 0; t < NT; ++t) x[t] = a.x[t] + i * a.x_row;
    for (int64_t j = 0; j < a.cols; ++j, d += a.ldt) {
      V dv[KV];
      for (int v = 0; v < KV; ++v) dv[v] = V::load_unaligned(d + v * L);
      for (int t = 0; t < NT; ++t) {
        const V xb(x[t][j]);  // a broadcast, folded into the FMA's memory operand
        for (int v = 0; v < KV; ++v) acc[t][v] = xsimd::fma(dv[v], xb, acc[t][v]);
      }
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < KV; ++v) acc[t][v].store_unaligned(a.acc[t] + v * L);
}

// The two column phases e (even dx columns) and o (odd) of 2L floats of a dx row, interleaved.
template <class V>
void interleave(const V& e, const V& o, V& lo, V& hi) {
  constexpr int L = int(V::size);
#if defined(__AVX512F__)
  if constexpr (L == 16) {
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    lo = V(_mm512_permutex2var_ps(e, il, o)), hi = V(_mm512_permutex2var_ps(e, ih, o));
    return;
  }
#endif
#if defined(__AVX__)
  if constexpr (L == 8) {
    const __m256 a = _mm256_unpacklo_ps(e, o), b = _mm256_unpackhi_ps(e, o);
    lo = V(_mm256_permute2f128_ps(a, b, 0x20)), hi = V(_mm256_permute2f128_ps(a, b, 0x31));
    return;
  }
#endif
  if constexpr (L == 4) {
    lo = V(_mm_unpacklo_ps(e, o)), hi = V(_mm_unpackhi_ps(e, o));
    return;
  }
  alignas(64) float ev[L], ov[L], out[2 * L];
  e.store_aligned(ev), o.store_aligned(ov);
  for (int l = 0; l < L; ++l) out[2 * l] = ev[l], out[2 * l + 1] = ov[l];
  lo = V::load_aligned(out), hi = V::load_aligned(out + L);
}

template <class Arch>
void depthwise_s2_data(const DepthwiseS2Data& a) {
  using V = xsimd::batch<float, Arch>;
  constexpr int64_t L = int64_t(V::size);
  const int64_t half = (a.W + 1) / 2;  // vectors of m cover both phases' columns
  // Tap column s feeds phase b = (s - pl) mod 2 at dy column m + d, d = (b + pl - s) / 2: the taps
  // of each phase listed apart, so that each phase's sum stays in its register.
  constexpr int kMaxS = 16;
  int64_t taps[2][kMaxS], shift[2][kMaxS], count[2] = {0, 0};
  int64_t d_min = 0, d_max = 0;
  for (int64_t s = 0; s < a.S; ++s) {
    const int64_t b = ((s - a.pad_l) % 2 + 2) % 2, d = (b + a.pad_l - s) / 2;
    taps[b][count[b]] = s, shift[b][count[b]++] = d;
    d_min = std::min(d_min, d), d_max = std::max(d_max, d);
  }
  for (int64_t h = 0; h < a.H; ++h) {
    float* row = a.dx + h * a.W;
    for (int64_t m0 = 0; m0 < half; m0 += L) {
      V even(a.bias), odd(a.bias);
      const bool inside = m0 + d_min >= 0 && m0 + L + d_max <= a.Q;
      for (int64_t r = (h + a.pad_t) % 2; r < a.R; r += 2) {
        const int64_t p = (h + a.pad_t - r) / 2;
        if (p < 0 || p >= a.P) continue;
        const float* dyrow = a.dy + p * a.Q + m0;
        const float* wr = a.w + r * a.S;
        auto load = [&](int64_t d) { return inside ? V::load_unaligned(dyrow + d) : load_range<V>(dyrow - m0, m0 + d, a.Q); };
        for (int64_t i = 0; i < count[0]; ++i) even = xsimd::fma(load(shift[0][i]), V(wr[taps[0][i]]), even);
        for (int64_t i = 0; i < count[1]; ++i) odd = xsimd::fma(load(shift[1][i]), V(wr[taps[1][i]]), odd);
      }
      V lo, hi;
      interleave(even, odd, lo, hi);
      const int64_t n = std::min(2 * L, a.W - 2 * m0);
      store_lanes(row + 2 * m0, lo, int(std::min(L, n)));
      if (n > L) store_lanes(row + 2 * m0 + L, hi, int(n - L));
    }
  }
}

// MA x NB: the accumulators, NB window vectors and one row vector within the register file
// (8x3 of 32 zmm; 4x3 of 16 ymm or xmm). Rows of A are aligned loads, windows mostly split ones.
// KV x NT outer-product tiles likewise (4x6, 2x8, 1x8 of 32 zmm; 2x6, 1x8 of 16), at most 8 taps:
// their pointers stay in the general registers.
template <class Arch, int MA, int NB, int KV0, int NT0, int KV1, int NT1, int NT2>
void fill_dot(DotKernels& k) {
  static_assert(kDotStep % (2 * xsimd::batch<float, Arch>::size) == 0, "kDotStep covers two vectors");
  k.tile = dot_tile<Arch, MA, NB>;
  k.ma = MA, k.nb = NB;
  k.tile1x4 = dot_tile<Arch, 1, 4>;
  k.tile_x1 = dot_tile<Arch, MA, 1>;
  static_assert(kDepthwiseAlign % xsimd::batch<float, Arch>::size == 0, "rows padded to whole vectors");
  k.taps[0] = depthwise_taps<Arch, 1>;
  k.taps[1] = depthwise_taps<Arch, 2>;
  k.taps[2] = depthwise_taps<Arch, 3>;
  k.taps[3] = depthwise_taps<Arch, 4>;
  k.taps3x3 = depthwise_3x3<Arch>;
  k.depthwise_s2_data = depthwise_s2_data<Arch>;
  k.outer[0] = {outer_tile<Arch, KV0, NT0>, KV0, NT0};
  k.outer[1] = {outer_tile<Arch, KV1, NT1>, KV1, NT1};
  k.outer[2] = {outer_tile<Arch, 1, NT2>, 1, NT2};
  k.lanes = int(xsimd::batch<float, Arch>::size);
}

}  // namespace
}  // namespace fastconv::detail
