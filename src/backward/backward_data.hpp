// Direction::BackwardData (dx from dy and w; the forward of a transposed convolution) on every
// forward algorithm, through the stride-phase decomposition (see backward_data.cpp).
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

// One solver per forward algorithm: each phase of dx runs that algorithm where it applies (the
// best of the others where it does not); the candidate declines when it applies to no phase.
template <Algorithm A>
void propose_backward_data(const Geometry&, const PlanContext&, Proposals&);
// Kernels no larger than their stride (patchify): all the phases as one 1x1 convolution.
void propose_backward_data_patches(const Geometry&, const PlanContext&, Proposals&);
// Depthwise at stride 2, one output channel per input channel: straight from dy, a channel per task
// (backward_data_depthwise.cpp).
void propose_backward_data_depthwise(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
