// Algorithm::Winograd for 3x3 kernels at stride 1 and dilation 1 (any padding, groups, batch):
// F(2x2,3x3) ("winograd_f2x2_3x3_<gemm tile>", 4x4 tiles, 2.25x fewer multiplies, error <= 1e-5,
// exact on small integers) and F(4x4,3x3) ("winograd_f4x4_3x3_<gemm tile>", 6x6 tiles, 4x fewer
// multiplies, error <= 1e-4). The planner picks between them; PlanOptions::implementation =
// "winograd_f2x2" forces the tighter one.
//
// Non-finite inputs: a NaN or Inf anywhere in a tile's input (m+2 x m+2 pixels) reaches every
// output of that tile (2x2 or 4x4 pixels, every output channel), and through the overlap of tiles
// a pixel on a tile border reaches the outputs of its neighbours too, even where the pixel is
// outside the 3x3 receptive field of an output. Inf can turn into NaN (Inf - Inf).
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_winograd(const Geometry&, const PlanContext&, Proposals&);

// U = G g G^T of one 3x3 filter g (row-major) for F(m x m, 3x3), m = 2 or 4, in double precision:
// (m+2) x (m+2) values, row-major.
void winograd_filter_transform(int m, const float* g, double* u);

}  // namespace fastconv::detail
