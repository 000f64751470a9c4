// Plain direct convolution: scalar loops over any problem, accumulating in float. The fallback
// that always applies.
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_direct_plain(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
