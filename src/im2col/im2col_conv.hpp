// Algorithm::Im2col: lowering to the packed SGEMM, streamed under the workspace budget.
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_im2col(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
