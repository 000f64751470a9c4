// Max pooling over NCHW float32 planes, for fastconv.torch.MaxPool2d (not part of the C++ library:
// fastconv is a convolution library; this serves the PyTorch models it runs).
#pragma once

#include <cstdint>

namespace fastconv_python {

struct PoolShape {
  int64_t planes;  // N * C
  int64_t H, W, P, Q;
  int64_t kh, kw, sh, sw, ph, pw;  // padding at most half the kernel (torch's rule), so every window
                                   // holds an input element (with ceil_mode's last windows too: none
                                   // starts past the input, torch's rule again)
};

// A plane's kernel: the row maxima into `maxima` (H x Q floats), then the max down the window's rows
// into y. `padded`: padded_row_floats(s), -inf outside what the kernel writes (the input row at pw);
// the slack lets the last vector of a padded row read past its last window.
constexpr int64_t kRowSlack = 32;
// The padded row's floats: with ceil_mode the last window may reach past the right padding.
inline int64_t padded_row_floats(const PoolShape& s) {
  const int64_t windows = (s.Q - 1) * s.sw + s.kw, padded = s.W + 2 * s.pw;
  return (windows > padded ? windows : padded) + kRowSlack;
}
using PoolPlaneFn = void (*)(const float* x, float* y, const PoolShape& s, float* padded, float* maxima);
// Per instruction set (max_pool__<isa>.cpp): 4, 8 and 16 lanes.
PoolPlaneFn pool_plane_sse2();
PoolPlaneFn pool_plane_avx2();
PoolPlaneFn pool_plane_avx512();

// y[plane][p][q] = max over the window, padding never winning; NaN propagates (as torch's). Planes
// are split over `threads` of fastconv's (those its convolutions run on).
void max_pool2d(const float* x, float* y, const PoolShape& s, int threads);

}  // namespace fastconv_python
