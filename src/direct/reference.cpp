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

void reference_backward_data(const ConvProblem& problem, const float* dy, const float* w, const float* bias,
                             double* dx, double* dx_abs) {
  const Geometry g(problem);
  // One task per (image, input channel): it owns its dx plane, summed in a fixed order.
  tbb::parallel_for(int64_t(0), g.N * g.C, [&](int64_t nc) {
    const int64_t n = nc / g.C, c = nc % g.C, group = c / g.Cg, cg = c % g.Cg;
    double* out = dx + nc * g.H * g.W;
    double* out_abs = dx_abs ? dx_abs + nc * g.H * g.W : nullptr;
    const double b = bias ? double(bias[c]) : 0.0;
    for (int64_t i = 0; i < g.H * g.W; ++i) {
      out[i] = b;
      if (out_abs) out_abs[i] = std::fabs(b);
    }
    for (int64_t kk = 0; kk < g.Kg; ++kk) {
      const int64_t k = group * g.Kg + kk;
      const float* dyk = dy + (n * g.K + k) * g.P * g.Q;
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s) {
          const double wv = w[((k * g.Cg + cg) * g.R + r) * g.S + s];
          for (int64_t p = 0; p < g.P; ++p) {
            const int64_t iy = p * g.stride_h - g.pad_t + r * g.dil_h;
            if (iy < 0 || iy >= g.H) continue;
            for (int64_t q = 0; q < g.Q; ++q) {
              const int64_t ix = q * g.stride_w - g.pad_l + s * g.dil_w;
              if (ix < 0 || ix >= g.W) continue;
              const double v = wv * double(dyk[p * g.Q + q]);
              out[iy * g.W + ix] += v;
              if (out_abs) out_abs[iy * g.W + ix] += std::fabs(v);
            }
          }
        }
    }
  });
}

void reference_backward_weights(const ConvProblem& problem, const float* x, const float* dy, double* dw, double* db,
                                double* dw_abs, double* db_abs) {
  const Geometry g(problem);
  tbb::parallel_for(int64_t(0), g.K, [&](int64_t k) {
    const int64_t group = k / g.Kg;
    for (int64_t cg = 0; cg < g.Cg; ++cg)
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t s = 0; s < g.S; ++s) {
          double sum = 0, sum_abs = 0;
          for (int64_t n = 0; n < g.N; ++n) {
            const float* xc = x + (n * g.C + group * g.Cg + cg) * g.H * g.W;
            const float* dyk = dy + (n * g.K + k) * g.P * g.Q;
            for (int64_t p = 0; p < g.P; ++p) {
              const int64_t iy = p * g.stride_h - g.pad_t + r * g.dil_h;
              if (iy < 0 || iy >= g.H) continue;
              for (int64_t q = 0; q < g.Q; ++q) {
                const int64_t ix = q * g.stride_w - g.pad_l + s * g.dil_w;
                if (ix < 0 || ix >= g.W) continue;
                const double v = double(dyk[p * g.Q + q]) * double(xc[iy * g.W + ix]);
                sum += v, sum_abs += std::fabs(v);
              }
            }
          }
          const int64_t i = ((k * g.Cg + cg) * g.R + r) * g.S + s;
          dw[i] = sum;
          if (dw_abs) dw_abs[i] = sum_abs;
        }
    if (db || db_abs) {
      double sum = 0, sum_abs = 0;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t i = 0; i < g.P * g.Q; ++i) {
          const double v = dy[(n * g.K + k) * g.P * g.Q + i];
          sum += v, sum_abs += std::fabs(v);
        }
      if (db) db[k] = sum;
      if (db_abs) db_abs[k] = sum_abs;
    }
  });
}

}  // namespace fastconv::detail
