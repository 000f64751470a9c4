// Algorithm::Im2col: lowering to the packed SGEMM, streamed under the workspace budget.
// Non-finite values: a NaN or Inf in the input reaches exactly the outputs whose receptive field
// holds it (padding is never multiplied by it). A non-finite weight meets the zero padding at the
// borders (Inf * 0 = NaN), as in frameworks that pad with explicit zeros.
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_im2col(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
