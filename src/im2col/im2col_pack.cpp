// Implicit im2col: cutting a block of output pixels into runs, and the per-ISA gather dispatch.
#include "im2col/im2col_pack.hpp"

#include <algorithm>

namespace fastconv::detail {

int64_t pixel_runs(const Geometry& g, int64_t n0, int64_t ncols, PixelRun* out) {
  int64_t count = 0;
  for (int64_t col = 0; col < ncols;) {
    const int64_t pixel = n0 + col, p = pixel / g.Q, q = pixel % g.Q;
    const int64_t length = std::min(g.Q - q, ncols - col);
    out[count++] = {col, p * g.stride_h, q, length};
    col += length;
  }
  return count;
}

PackIm2colFn pack_b_im2col_for(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return pack_b_im2col_avx512;
    case Isa::Avx2: return pack_b_im2col_avx2;
    case Isa::Sse2: break;
  }
  return pack_b_im2col_sse2;
}

}  // namespace fastconv::detail
