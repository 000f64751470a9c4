// The reference convolution: plain loops accumulating in double. The oracle of every test; never
// fast, always right.
#pragma once

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

// y = conv(x, w) + b in double. When y_abs is not null it also receives conv(|x|, |w|) + |b|, the
// magnitude that normalises the error of a float result (design section 8). bias may be null.
// Validates the problem; parallel over images and output channels (each output is summed in a
// fixed order, so the result is deterministic).
// The padding follows problem.padding_mode (zeros, reflect, replicate, circular).
void reference_conv2d(const ConvProblem& problem, const float* x, const float* w, const float* bias,
                      double* y, double* y_abs = nullptr);

// The post-ops on the reference's output, in double: y = act(y + residual_scale * r) over n values,
// r the residual as the caller held it before the convolution (null when post_ops.residual is not
// set). y_abs, when not null, grows by |residual_scale * r| (the activations are at most about
// 1.13-Lipschitz, so that magnitude still bounds the error).
void reference_post_ops(const PostOps& post_ops, const float* residual, double* y, double* y_abs, std::size_t n);

// The input coordinate that padded coordinate i (in [-pad, n + pad)) reads under `mode`, or -1 for
// a zero: reflect mirrors without repeating the edge, replicate repeats it, circular wraps around.
int64_t padded_source_index(int64_t i, int64_t n, PadMode mode);

}  // namespace fastconv::detail
