#include "gemm/pack.hpp"

#include <algorithm>

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

}  // namespace fastconv::detail
