// Global average pooling over NCHW float32 planes, for the heads of the classification networks that
// fastconv.torch runs as one native call (AdaptiveAvgPool2d((1, 1)) before the classifier; not part of
// the C++ library, which is about convolution).
#pragma once

#include <cstdint>

namespace fastconv_python {

// y[plane] = the mean of the plane's `pixels` floats, summed in double (8 partial sums in a fixed
// order: the bits do not depend on the threads). Planes split over `threads` of fastconv's threads
// when there are enough of them to pay for the wake-up.
void global_avg_pool(const float* x, float* y, int64_t planes, int64_t pixels, int threads);

}  // namespace fastconv_python
