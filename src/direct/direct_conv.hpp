// Algorithm::Direct: SIMD direct convolution on NCHW, vectorised along the output width. Applies to
// every valid problem and needs no workspace: the fallback when nothing else fits.
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_direct(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
