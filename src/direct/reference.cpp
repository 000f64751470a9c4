#include "direct/reference.hpp"

#include <tbb/parallel_for.h>

#include <cmath>
#include <vector>

#include "core/geometry.hpp"

namespace fastconv::detail {

void reference_conv2d(const ConvProblem& problem, const float* x, const float* w, const float* bias,
                      double* y, double* y_abs) {
  const Geometry g(problem);
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
            const int64_t iy = p * g.stride_h - g.pad_t + r * g.dil_h;
            if (iy < 0 || iy >= g.H) continue;
            for (int64_t q = 0; q < g.Q; ++q) {
              const int64_t ix = q * g.stride_w - g.pad_l + s * g.dil_w;
              if (ix < 0 || ix >= g.W) continue;
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
