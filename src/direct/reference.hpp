// The reference convolution: plain loops accumulating in double. The oracle of every test; never
// fast, always right.
#pragma once

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

// y = conv(x, w) + b in double. When y_abs is not null it also receives conv(|x|, |w|) + |b|, the
// magnitude that normalises the error of a float result (design section 8). bias may be null.
// Validates the problem; parallel over images and output channels (each output is summed in a
// fixed order, so the result is deterministic).
void reference_conv2d(const ConvProblem& problem, const float* x, const float* w, const float* bias,
                      double* y, double* y_abs = nullptr);

}  // namespace fastconv::detail
