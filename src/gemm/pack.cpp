#include "gemm/pack.hpp"

#include <algorithm>
#include <cstring>

namespace fastconv::detail {

void pack_a_panels(TransposeRowsFn transpose, const float* a, int64_t lda, int64_t m, int64_t k, int mr, float* dst,
                   int64_t images, int64_t image_stride) {
  const int64_t depth = images * k;
  for (int64_t i0 = 0; i0 < m; i0 += mr, dst += depth * mr) {
    const int rows = int(std::min<int64_t>(mr, m - i0));
    if (rows < mr) std::fill(dst, dst + depth * mr, 0.0f);  // the last panel's missing rows
    for (int64_t i = 0; i < images; ++i)
      for (int r = 0; r < rows; r += 16)
        transpose(a + i * image_stride + (i0 + r) * lda, lda, std::min(16, rows - r), k, dst + i * k * mr + r, mr);
  }
}

namespace {

// Full panels with the width known at compile time: the row copies become a few vector moves
// (a memcpy call per 32-128 bytes costs as much as the copy).
template <int NR>
void pack_b_full_panels(const float* b, int64_t ldb, int64_t kc, int64_t panels, float* dst) {
  for (int64_t j = 0; j < panels; ++j) {
    const float* src = b + j * NR;
    for (int64_t p = 0; p < kc; ++p, dst += NR, src += ldb)
      for (int q = 0; q < NR; ++q) dst[q] = src[q];
  }
}

}  // namespace

void pack_b_panels(const float* b, int64_t ldb, int64_t kc, int64_t n, int nr, float* dst) {
  const int64_t full = n / nr;
  switch (nr) {
    case 7: pack_b_full_panels<7>(b, ldb, kc, full, dst); break;  // the pixel-major tiles' 7 pixels
    case 8: pack_b_full_panels<8>(b, ldb, kc, full, dst); break;
    case 16: pack_b_full_panels<16>(b, ldb, kc, full, dst); break;
    case 32: pack_b_full_panels<32>(b, ldb, kc, full, dst); break;
    default:
      for (int64_t j = 0; j < full; ++j)
        for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + (j * kc + p) * nr, b + p * ldb + j * nr, sizeof(float) * nr);
  }
  if (const int64_t cols = n - full * nr; cols > 0) {
    float* d = dst + full * kc * nr;
    const float* src = b + full * nr;
    for (int64_t p = 0; p < kc; ++p, d += nr, src += ldb) {  // (a pixel block may end in a half panel)
      std::memcpy(d, src, sizeof(float) * std::size_t(cols));
      std::fill(d + cols, d + nr, 0.0f);
    }
  }
}

}  // namespace fastconv::detail
