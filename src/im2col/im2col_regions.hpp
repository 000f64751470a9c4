// Algorithm::Im2col over regions of equal taps: im2col's GEMM without the taps that read padding
// (im2col_regions.cpp). Proposed where they are 10% of the work or more (dilated layers with wide
// padding, small images with large kernels).
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_im2col_regions(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
