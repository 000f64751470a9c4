// The implicit-im2col gather compiled for avx512.
#include "im2col/im2col_pack_impl.hpp"

namespace fastconv::detail {

void pack_b_im2col_avx512(const Geometry& g, const float* x, int64_t k0, int64_t kc, const PixelRun* runs,
                         int64_t nruns, int64_t ncols, int nr, int64_t panel_stride, float* line, float* dst) {
  pack_b_im2col_impl(g, x, k0, kc, runs, nruns, ncols, nr, panel_stride, line, dst);
}

}  // namespace fastconv::detail
