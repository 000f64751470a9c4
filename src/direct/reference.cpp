#include "direct/reference.hpp"

#include <tbb/parallel_for.h>

#include <cmath>
#include <vector>

#include "core/epilogue.hpp"
#include "core/geometry.hpp"

namespace fastconv::detail {

int64_t padded_source_index(int64_t i, int64_t n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::Zeros: return -1;
    case PadMode::Reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PadMode::Replicate: return i < 0 ? 0 : n - 1;
    case PadMode::Circular: return i < 0 ? i + n : i - n;
  }
  return -1;
}

void reference_post_ops(const PostOps& post_ops, const float* residual, double* y, double* y_abs, std::size_t n) {
  EpilogueParams p;
  p.activation = post_ops.activation, p.alpha = post_ops.alpha, p.beta = post_ops.beta;
  const double scale = post_ops.residual ? double(post_ops.residual_scale) : 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double v = y[i];
    if (post_ops.residual && residual) {
      v += scale * double(residual[i]);
      if (y_abs) y_abs[i] += std::fabs(scale * double(residual[i]));
    }
    y[i] = activate_reference(p, v);
  }
}

void reference_conv2d(const ConvProblem& problem, const float* x, const float* w, const float* bias,
                      double* y, double* y_abs) {
  const Geometry g(problem);
  const PadMode mode = problem.padding_mode;
  tbb::parallel_for(int64_t(0), g.N * g.K, [&](int64_t nk) {
    const int64_t n = nk / g.K, k = nk % g.K, group = k / g.Kg;
    double* out = y + nk * g.P * g.Q;
    double* out_abs = y_abs ? y_abs + nk * g.P * g.Q : nullptr;
    const double b = bias ? double(bias[k]) : 0.0;
    for (int64_t i = 0; i < g.P * g.Q; ++i) {
      out[i] = b;
      if (out_abs) out_abs[i] = std::fabs(b);
    }
    for (int64_t cg = 0; cg < g.Cg; ++cg) {
      const float* xc = x + (n * g.C + group * g.Cg + cg) * g.H * g.W;
      for (int64_t r = 0; r < g.R; ++r) {
        for (int64_t s = 0; s < g.S; ++s) {
          const double wv = w[((k * g.Cg + cg) * g.R + r) * g.S + s];
          for (int64_t p = 0; p < g.P; ++p) {
            const int64_t iy = padded_source_index(p * g.stride_h - g.pad_t + r * g.dil_h, g.H, mode);
            if (iy < 0) continue;
            for (int64_t q = 0; q < g.Q; ++q) {
              const int64_t ix = padded_source_index(q * g.stride_w - g.pad_l + s * g.dil_w, g.W, mode);
              if (ix < 0) continue;
              const double xv = xc[iy * g.W + ix];
              out[p * g.Q + q] += wv * xv;
              if (out_abs) out_abs[p * g.Q + q] += std::fabs(wv * xv);
            }
          }
        }
      }
    }
  });
}

}  // namespace fastconv::detail
