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

// The two gradients by definition, in double, for the forward problem `problem`:
// dx[n,c,h,w] = sum over k, r, s and the outputs (p, q) with h = p*sh - pt + r*dh, w = q*sw - pl + s*dw
// of dy[n,k,p,q] * w[k,c%Cg,r,s] (+ bias[c] when not null: the transposed convolution's bias);
// dx_abs, when not null, the same sum of |dy| * |w| (+ |bias|).
void reference_backward_data(const ConvProblem& problem, const float* dy, const float* w, const float* bias,
                             double* dx, double* dx_abs = nullptr);
// dw[k,c,r,s] = sum over n, p, q of dy[n,k,p,q] * x[n, g*Cg + c, p*sh - pt + r*dh, q*sw - pl + s*dw];
// db[k] = sum over n, p, q of dy[n,k,p,q] (when not null); dw_abs/db_abs the sums of magnitudes.
void reference_backward_weights(const ConvProblem& problem, const float* x, const float* dy, double* dw,
                                double* db = nullptr, double* dw_abs = nullptr, double* db_abs = nullptr);
// The post-ops on the reference's output, in double: y = act(y + residual_scale * r) over n values,
// r the residual as the caller held it before the convolution (null when post_ops.residual is not
// set). y_abs, when not null, grows by |residual_scale * r| (the activations are at most about
// 1.13-Lipschitz, so that magnitude still bounds the error).
void reference_post_ops(const PostOps& post_ops, const float* residual, double* y, double* y_abs, std::size_t n);

// The input coordinate that padded coordinate i (in [-pad, n + pad)) reads under `mode`, or -1 for
// a zero: reflect mirrors without repeating the edge, replicate repeats it, circular wraps around.
int64_t padded_source_index(int64_t i, int64_t n, PadMode mode);

}  // namespace fastconv::detail
