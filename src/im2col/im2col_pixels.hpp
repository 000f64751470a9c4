// Algorithm::Im2col, pixel-major: the output pixels along the microkernel's rows and the output
// channels along its vectors, for small images (see im2col_pixels.cpp). Same lowering and the same
// non-finite behaviour as im2col (im2col_conv.hpp).
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_im2col_pixels(const Geometry&, const PlanContext&, Proposals&);
// The same tiles with no lowering: the kernel reads the (zero-padded) input in place, for any image.
void propose_im2col_implicit(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
