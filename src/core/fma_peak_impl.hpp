// Body of the FMA peak loop, instantiated once per instruction set (fma_peak__<isa>.cpp).
#pragma once

#include <xsimd/xsimd.hpp>

namespace fastconv::detail {
namespace {

template <class Arch>
double fma_peak_loop(int64_t iters) {
  using V = xsimd::batch<float, Arch>;
  // 12 independent chains cover the FMA latency (4 cycles) of two pipes with room to spare.
  V a0(0.f), a1(1e-3f), a2(2e-3f), a3(3e-3f), a4(4e-3f), a5(5e-3f), a6(6e-3f), a7(7e-3f), a8(8e-3f),
      a9(9e-3f), a10(1e-2f), a11(1.1e-2f);
  const V m(0.999999f), c(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
    a0 = xsimd::fma(a0, m, c), a1 = xsimd::fma(a1, m, c), a2 = xsimd::fma(a2, m, c);
    a3 = xsimd::fma(a3, m, c), a4 = xsimd::fma(a4, m, c), a5 = xsimd::fma(a5, m, c);
    a6 = xsimd::fma(a6, m, c), a7 = xsimd::fma(a7, m, c), a8 = xsimd::fma(a8, m, c);
    a9 = xsimd::fma(a9, m, c), a10 = xsimd::fma(a10, m, c), a11 = xsimd::fma(a11, m, c);
    asm volatile("" ::: "memory");  // keep the loop: its results are otherwise dead
  }
  const V sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
  volatile float sink = xsimd::hadd(sum);
  (void)sink;
  return 2.0 * 12 * V::size * double(iters);
}

}  // namespace
}  // namespace fastconv::detail
