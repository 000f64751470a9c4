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

// MA x NB: the accumulators, NB window vectors and one row vector within the register file
// (8x3 of 32 zmm; 4x3 of 16 ymm or xmm). Rows of A are aligned loads, windows mostly split ones.
template <class Arch, int MA, int NB>
void fill_dot(DotKernels& k) {
  static_assert(kDotStep % (2 * xsimd::batch<float, Arch>::size) == 0, "kDotStep covers two vectors");
  k.tile = dot_tile<Arch, MA, NB>;
  k.ma = MA, k.nb = NB;
  k.tile1x4 = dot_tile<Arch, 1, 4>;
}

}  // namespace
}  // namespace fastconv::detail
