// Max pooling over NCHW float32 planes, for fastconv.torch.MaxPool2d (not part of the C++ library:
// fastconv is a convolution library; this serves the PyTorch models it runs).
#pragma once

#include <cstdint>

namespace fastconv_python {

struct PoolShape {
  int64_t planes;  // N * C
  int64_t H, W, P, Q;
  int64_t kh, kw, sh, sw, ph, pw;  // padding at most half the kernel (torch's rule), so every window
                                   // holds an input element
};

// y[plane][p][q] = max over the window, padding never winning; NaN propagates (as torch's). Planes
// are split over `threads` of fastconv's (those its convolutions run on).
void max_pool2d(const float* x, float* y, const PoolShape& s, int threads);

}  // namespace fastconv_python
