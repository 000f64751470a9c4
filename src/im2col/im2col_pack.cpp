// Implicit im2col: cutting a block of output pixels into runs, and the per-ISA gather dispatch.
#include "im2col/im2col_pack.hpp"

#include <algorithm>

#include "core/isa_dispatch.hpp"

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

namespace {
template <PackIm2colFn F>
PackIm2colFn packer() { return F; }
}  // namespace

PackIm2colFn pack_b_im2col_for(Isa isa) {
  return isa_table<PackIm2colFn, packer<pack_b_im2col_sse2>, packer<pack_b_im2col_avx2>,
                   packer<pack_b_im2col_avx512>>(isa, "im2col gather");
}

}  // namespace fastconv::detail
