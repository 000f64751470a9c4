// SGEMM microkernels for AVX2 + FMA: 6x16 (12 ymm accumulators), 7x16 for pixel-major products, and
// the AVX-512 tile shape for tests.
#include <immintrin.h>

#include <algorithm>

#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {
namespace {

// 8 x 8 blocks in registers (unpack pairs, 64-bit shuffles, 128-bit lane swaps), up to two blocks
// of rows; the columns past `rows` are masked off the stores.
void transpose_rows_avx2(const float* src, int64_t ld, int rows, int64_t k, float* dst, int64_t ldd) {
  for (int r0 = 0; r0 < rows; r0 += 8) {
    const int n = std::min(8, rows - r0);
    const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const float* s = src + r0 * ld;
    float* d = dst + r0;
    int64_t p0 = 0;
    for (; p0 + 8 <= k; p0 += 8) {
      __m256 r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = i < n ? _mm256_loadu_ps(s + i * ld + p0) : _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int h = 0; h < 2; ++h) {  // rows 0-3, then 4-7: columns (0,4), (1,5), (2,6), (3,7)
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      for (int i = 0; i < 4; ++i) {
        _mm256_maskstore_ps(d + (p0 + i) * ldd, keep, _mm256_permute2f128_ps(u[i], u[4 + i], 0x20));
        _mm256_maskstore_ps(d + (p0 + 4 + i) * ldd, keep, _mm256_permute2f128_ps(u[i], u[4 + i], 0x31));
      }
    }
    for (; p0 < k; ++p0)
      for (int i = 0; i < n; ++i) d[p0 * ldd + i] = s[i * ld + p0];
  }
}

}  // namespace

UkernelInfo sgemm_ukernel_avx2() {
  note_isa_entry(Isa::Avx2);
  using A = xsimd::fma3<xsimd::avx2>;
  // Also im2col_implicit's tile with AVX2 (sgemm_implicit_kernel): 12 accumulators, 2 B vectors and
  // a broadcast fit the 16 registers, where the 7x16 pixel tile spills one.
  return implicit_tile_info<A, 6, 2, 1>("sgemm_ukernel_6x16__avx2", transpose_rows_avx2);
}

UkernelInfo sgemm_ukernel_pixels_avx2() {
  note_isa_entry(Isa::Avx2);
  using A = xsimd::fma3<xsimd::avx2>;
  // 14 accumulators, 2 B vectors and a broadcast need 17 registers: GCC spills one accumulator.
  // Measured slower than im2col's 6x16 panels, so not proposed (im2col_pixels.cpp); tested here.
  return implicit_tile_info<A, 7, 2, 1>("sgemm_ukernel_7x16__avx2", transpose_rows_avx2);
}

UkernelInfo sgemm_ukernel_12x32_avx2() {
  note_isa_entry(Isa::Avx2);
  using A = xsimd::fma3<xsimd::avx2>;
  return tile_info<A, 12, 4, 2>("sgemm_ukernel_12x32__avx2", transpose_rows_avx2);
}

}  // namespace fastconv::detail
