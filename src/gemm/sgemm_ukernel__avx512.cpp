// SGEMM microkernels for AVX-512: 12x32 (24 zmm accumulators), and 7x48 for pixel-major products.
// GCC 12 flags the intrinsics' own _mm512_undefined_ps() operands in the transpose as maybe
// uninitialized.
#if !defined(__clang__)  // a GCC warning clang does not know
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {
namespace {

// 16 x 16 blocks in registers: unpack pairs, then 64-bit and 128-bit lane shuffles.
// 16 columns [p0, p0 + 16) of the rows, or the last `cols` < 16 of them: masked loads (which never
// fault past the row's end) and only those output rows stored.
// With `fuse`, each transposed row goes out as y = clamp(y + scale * R) (TileFuse, R laid out as dst).
inline void transpose_block16(const float* src, int64_t ld, int rows, int64_t p0, int cols, float* dst, int64_t ldd,
                              const TileFuse* fuse = nullptr) {
  const __mmask16 keep = __mmask16((1u << rows) - 1), take = __mmask16((1u << cols) - 1);
  __m512 r[16], t[16], u[16], v[16];
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(take, src + i * ld + p0) : _mm512_setzero_ps();
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 4; ++i) {
      v[8 * h + i] = _mm512_shuffle_f32x4(u[8 * h + i], u[8 * h + 4 + i], 0x88);
      v[8 * h + 4 + i] = _mm512_shuffle_f32x4(u[8 * h + i], u[8 * h + 4 + i], 0xdd);
    }
  // The epilogue's operations through the same xsimd calls (its fma is x * y + z, which each compiler
  // contracts or not as it does the epilogue's: GCC fuses it, clang keeps two roundings).
  using V = xsimd::batch<float, xsimd::avx512f>;
  auto out = [&](int64_t p, __m512 y) {
    if (fuse) {
      V v(y);
      if (fuse->residual) v = xsimd::fma(V(fuse->scale), V(_mm512_maskz_loadu_ps(keep, fuse->residual + p * ldd)), v);
      y = clamp_lanes(v, V(fuse->lo), V(fuse->hi));
    }
    _mm512_mask_storeu_ps(dst + p * ldd, keep, y);
  };
  for (int i = 0; i < 8; ++i) {
    if (i < cols) out(p0 + i, _mm512_shuffle_f32x4(v[i], v[8 + i], 0x88));
    if (8 + i < cols) out(p0 + 8 + i, _mm512_shuffle_f32x4(v[i], v[8 + i], 0xdd));
  }
}

// Columns [p0, p0 + cols) of the rows by scalar copies.
inline void transpose_scalar(const float* src, int64_t ld, int rows, int64_t p0, int64_t cols, float* dst, int64_t ldd) {
  for (int64_t p = p0; p < p0 + cols; ++p)
    for (int i = 0; i < rows; ++i) dst[p * ldd + i] = src[i * ld + p];
}

// A block of 16 x 16 costs about a hundred instructions however few of its rows or columns are
// real: up to this many elements (a 17x17 plane's last row and last column) go by scalar copies.
constexpr int64_t kScalarTransposeElements = 32;

void transpose_rows_avx512(const float* src, int64_t ld, int rows, int64_t k, float* dst, int64_t ldd) {
  if (rows * 16 <= kScalarTransposeElements) {
    transpose_scalar(src, ld, rows, 0, k, dst, ldd);
    return;
  }
  int64_t p0 = 0;
  for (; p0 + 16 <= k; p0 += 16) transpose_block16(src, ld, rows, p0, 16, dst, ldd);
  if (p0 == k) return;
  // The last columns in registers too (rows of 7 or 14, small images, are all tail) unless a few.
  if ((k - p0) * rows <= kScalarTransposeElements)
    transpose_scalar(src, ld, rows, p0, k - p0, dst, ldd);
  else
    transpose_block16(src, ld, rows, p0, int(k - p0), dst, ldd);
}

void transpose_rows_fused_avx512(const float* src, int64_t ld, int rows, int64_t k, float* dst, int64_t ldd,
                                 const TileFuse& fuse) {
  for (int64_t p0 = 0; p0 < k; p0 += 16) transpose_block16(src, ld, rows, p0, k - p0 < 16 ? int(k - p0) : 16, dst, ldd, &fuse);
}

}  // namespace

UkernelInfo sgemm_ukernel_avx512() {
  note_isa_entry(Isa::Avx512);
  using A = xsimd::avx512f;
  return tile_info<A, 12, 2, 1>("sgemm_ukernel_12x32__avx512", transpose_rows_avx512);
}

UkernelInfo sgemm_ukernel_pixels_avx512() {
  note_isa_entry(Isa::Avx512);
  using A = xsimd::avx512f;
  // 21 accumulators, 3 B vectors and a broadcast: no spills (7x64 needs 33 registers; GCC spilled
  // two accumulators). The half-width kernel is one vector.
  UkernelInfo info = implicit_tile_info<A, 7, 3, 1>("sgemm_ukernel_7x48__avx512", transpose_rows_avx512, 16);
  info.transpose_fused = transpose_rows_fused_avx512;
  return info;
}

}  // namespace fastconv::detail
