// direct_dots (Algorithm::Direct): 1x1 convolutions of 1x1 images, the fully connected layers, as
// dot products that stream the weights from memory once whatever the batch.
#pragma once

#include "core/algorithm.hpp"

namespace fastconv::detail {

void propose_direct_dots(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
