// Implicit im2col: packs blocks of the lowered matrix straight from the NCHW input into the GEMM's
// B micro-panels, so the lowered matrix (C*R*S x P*Q, R*S times the input) never exists.
#pragma once

#include <cstdint>
#include <vector>

#include "core/geometry.hpp"

namespace fastconv::detail {

// The output pixels [n0, n0 + ncols) of one task, cut into runs that stay within one output row:
// what the packer walks for every row of the lowered matrix.
struct PixelRun {
  int64_t dst;      // column offset in the packed block: panel (dst / nr), column (dst % nr)
  int64_t p, q0;    // output row, first output column
  int64_t length;   // output columns in the run (never crosses a panel)
};
std::vector<PixelRun> pixel_runs(const Geometry& g, int64_t n0, int64_t ncols, int nr);

// Rows [k0, k0 + kc) (row k is kernel tap (c, r, s) = (k / RS, k / S % R, k % S) of the group) and
// the columns of `runs` (ncols pixels) into ceil(ncols/nr) micro-panels of kc x nr floats, k-major;
// padding and the columns past ncols are zero. x: the first input channel of the group in one image.
void pack_b_im2col(const Geometry& g, const float* x, int64_t k0, int64_t kc, const std::vector<PixelRun>& runs,
                   int64_t ncols, int nr, float* dst);

}  // namespace fastconv::detail
