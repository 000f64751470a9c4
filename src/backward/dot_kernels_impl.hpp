// The dot-product tiles written once over the xsimd architecture; included only by the per-ISA
// translation units (dot_kernels__<isa>.cpp).
#pragma once

#include <cstdint>
#include <xsimd/xsimd.hpp>

#include "backward/dot_kernels.hpp"

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

template <class Arch, int MA, int NB>
void dot_tile(int64_t len, const float* const* a, const float* const* b, float* c, int64_t ldc, bool accumulate) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  // MA x NB accumulators; for one row of A, two sets (two steps of L per iteration) hide the FMA latency.
  constexpr int U = MA == 1 ? 2 : 1;
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

// MA x NB: the accumulators, NB window vectors and one row vector within the register file
// (8x3 of 32 zmm; 4x3 of 16 ymm or xmm). Rows of A are aligned loads, windows mostly split ones.
template <class Arch, int MA, int NB>
void fill_dot(DotKernels& k) {
  static_assert(kDotStep % (2 * xsimd::batch<float, Arch>::size) == 0, "kDotStep covers two vectors");
  k.tile = dot_tile<Arch, MA, NB>;
  k.ma = MA, k.nb = NB;
  k.tile1x4 = dot_tile<Arch, 1, 4>;
  static_assert(kDepthwiseAlign % xsimd::batch<float, Arch>::size == 0, "rows padded to whole vectors");
  k.taps[0] = depthwise_taps<Arch, 1>;
  k.taps[1] = depthwise_taps<Arch, 2>;
  k.taps[2] = depthwise_taps<Arch, 3>;
  k.taps[3] = depthwise_taps<Arch, 4>;
  k.lanes = int(xsimd::batch<float, Arch>::size);
}

}  // namespace
}  // namespace fastconv::detail
