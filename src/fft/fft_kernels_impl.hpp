// The FFT convolution's frequency-domain kernels, written once over the xsimd architecture.
// Included only by the per-ISA translation units (fft_kernels__<isa>.cpp), each with its own flags.
#pragma once

#include <complex>
#include <cstdint>
#include <xsimd/xsimd.hpp>

namespace fastconv::detail {
namespace {  // internal linkage: each instruction set keeps its own copy

// An MR x NR tile of complex accumulators (split: real and imaginary vectors) over all c: per c,
// NR blocks of x and MR blocks of w, 4*MR*NR FMAs. The order of the sum over c is fixed.
template <class Arch, int MR, int NR>
void fft_products_tile(int64_t cg, const float* __restrict w, const float* __restrict x, float* __restrict y,
                       int64_t ld) {
  using V = xsimd::batch<float, Arch>;
  constexpr int L = int(V::size);
  V re[MR][NR], im[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) re[i][j] = V(0.0f), im[i][j] = V(0.0f);
  for (int64_t c = 0; c < cg; ++c) {
    V xr[NR], xi[NR];
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      xr[j] = V::load_aligned(x + c * ld + j * 2 * L);
      xi[j] = V::load_aligned(x + c * ld + j * 2 * L + L);
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const V wr = V::load_aligned(w + (i * cg + c) * 2 * L);
      const V wi = V::load_aligned(w + (i * cg + c) * 2 * L + L);
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) {
        re[i][j] = xsimd::fma(wr, xr[j], re[i][j]);
        re[i][j] = xsimd::fnma(wi, xi[j], re[i][j]);
        im[i][j] = xsimd::fma(wr, xi[j], im[i][j]);
        im[i][j] = xsimd::fma(wi, xr[j], im[i][j]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      re[i][j].store_aligned(y + i * ld + j * 2 * L);
      im[i][j].store_aligned(y + i * ld + j * 2 * L + L);
    }
}

// Full MR x NR tiles, then the edges with narrower instantiations of the same code (every output
// element sums over c in the same order whatever tile it falls in).
template <class Arch, int MR, int NR>
void fft_products(int64_t kg, int64_t cg, int64_t nt, const float* w, const float* x, float* y, int64_t ld) {
  constexpr int L = int(xsimd::batch<float, Arch>::size);
  int64_t k = 0;
  for (; k + MR <= kg; k += MR) {
    const float* wk = w + k * cg * 2 * L;
    int64_t t = 0;
    for (; t + NR <= nt; t += NR) fft_products_tile<Arch, MR, NR>(cg, wk, x + t * 2 * L, y + k * ld + t * 2 * L, ld);
    for (; t < nt; ++t) fft_products_tile<Arch, MR, 1>(cg, wk, x + t * 2 * L, y + k * ld + t * 2 * L, ld);
  }
  for (; k < kg; ++k) {
    const float* wk = w + k * cg * 2 * L;
    int64_t t = 0;
    for (; t + NR <= nt; t += NR) fft_products_tile<Arch, 1, NR>(cg, wk, x + t * 2 * L, y + k * ld + t * 2 * L, ld);
    for (; t < nt; ++t) fft_products_tile<Arch, 1, 1>(cg, wk, x + t * 2 * L, y + k * ld + t * 2 * L, ld);
  }
}

// xsimd's complex batches load interleaved pairs as separate real and imaginary vectors (and store
// them back interleaved) with the instruction set's shuffles. (xsimd 8.1's AVX load fills both
// halves of registers it declares without a value: GCC's warning about it is noise.)
#pragma GCC diagnostic push
#if !defined(__clang__)  // a GCC warning clang does not know
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <class Arch>
void fft_split(const float* __restrict spectrum, int64_t bins, float* __restrict dst, int64_t dst_stride) {
  using C = xsimd::batch<std::complex<float>, Arch>;
  constexpr int64_t L = int64_t(C::size);
  const auto* s = reinterpret_cast<const std::complex<float>*>(spectrum);
  int64_t b = 0;
  for (; b + L <= bins; b += L, dst += dst_stride) {
    const C z = C::load_unaligned(s + b);
    z.real().store_aligned(dst);
    z.imag().store_aligned(dst + L);
  }
  if (b < bins) {
    for (int64_t l = 0; l < L; ++l) {
      const bool in = b + l < bins;
      dst[l] = in ? spectrum[2 * (b + l)] : 0.0f;
      dst[L + l] = in ? spectrum[2 * (b + l) + 1] : 0.0f;
    }
  }
}

template <class Arch>
void fft_merge(const float* __restrict src, int64_t src_stride, int64_t bins, float* __restrict spectrum) {
  using V = xsimd::batch<float, Arch>;
  using C = xsimd::batch<std::complex<float>, Arch>;
  constexpr int64_t L = int64_t(C::size);
  auto* s = reinterpret_cast<std::complex<float>*>(spectrum);
  int64_t b = 0;
  for (; b + L <= bins; b += L, src += src_stride) C(V::load_aligned(src), V::load_aligned(src + L)).store_unaligned(s + b);
  for (int64_t l = 0; b + l < bins; ++l) spectrum[2 * (b + l)] = src[l], spectrum[2 * (b + l) + 1] = src[L + l];
}
#pragma GCC diagnostic pop

template <class Arch, int MR, int NR>
FftKernels make_fft_kernels(const char* isa, Isa level) {
  return {isa, level, int(xsimd::batch<float, Arch>::size), MR, NR, fft_products<Arch, MR, NR>, fft_split<Arch>,
          fft_merge<Arch>};
}

}  // namespace
}  // namespace fastconv::detail
