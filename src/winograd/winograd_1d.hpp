// Algorithm::Winograd for R x 1 and 1 x R kernels, R = 3, 5, 7, at stride 1 (groups, batch and
// padding along the kernel's long side): the one-dimensional F(6,3), F(4,5) and F(2,7) on eight
// points ("winograd_1d_f<m>_<R>x1_<gemm tile>", "winograd_1d_f<m>_1x<R>_..."), error about 2e-6 of
// the largest output. See winograd_1d.cpp.
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_winograd_1d(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
