#include "im2col/im2col_pack.hpp"

#include <algorithm>
#include <cstring>

namespace fastconv::detail {

std::vector<PixelRun> pixel_runs(const Geometry& g, int64_t n0, int64_t ncols, int nr) {
  std::vector<PixelRun> runs;
  for (int64_t col = 0; col < ncols;) {
    const int64_t pixel = n0 + col, p = pixel / g.Q, q = pixel % g.Q;
    const int64_t to_panel_end = nr - col % nr;
    const int64_t length = std::min({g.Q - q, to_panel_end, ncols - col});
    runs.push_back({col, p, q, length});
    col += length;
  }
  return runs;
}

void pack_b_im2col(const Geometry& g, const float* x, int64_t k0, int64_t kc, const std::vector<PixelRun>& runs,
                   int64_t ncols, int nr, float* dst) {
  const int64_t RS = g.R * g.S, panel_floats = kc * nr;
  // Columns of the last panel past ncols stay zero for every row.
  if (const int64_t tail = ncols % nr; tail != 0) {
    float* last = dst + (ncols / nr) * panel_floats;
    for (int64_t k = 0; k < kc; ++k) std::fill(last + k * nr + tail, last + (k + 1) * nr, 0.0f);
  }
  // Row by row of the lowered matrix: one kernel tap, all pixels of the block. The input is read
  // along its rows; each run lands inside one panel.
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t tap = k0 + k, c = tap / RS, r = tap / g.S % g.R, s = tap % g.S;
    const float* xc = x + c * g.H * g.W;
    const int64_t y_off = r * g.dil_h - g.pad_t, x_off = s * g.dil_w - g.pad_l;
    const Range cols = valid_outputs(g.Q, g.stride_w, x_off, g.W);
    for (const PixelRun& run : runs) {
      float* d = dst + (run.dst / nr) * panel_floats + k * nr + run.dst % nr;
      const int64_t iy = run.p * g.stride_h + y_off;
      if (iy < 0 || iy >= g.H) {
        std::fill(d, d + run.length, 0.0f);
        continue;
      }
      const int64_t q_end = run.q0 + run.length;
      const int64_t lo = std::clamp(cols.begin, run.q0, q_end), hi = std::clamp(cols.end, lo, q_end);
      std::fill(d, d + (lo - run.q0), 0.0f);
      float* out = d + (lo - run.q0);
      // Valid columns read the input from column lo*stride + x_off >= 0 on.
      const float* src = xc + iy * g.W + (hi > lo ? lo * g.stride_w + x_off : 0);
      if (g.stride_w == 1) {
        for (int64_t i = 0; i < hi - lo; ++i) out[i] = src[i];
      } else {
        for (int64_t i = 0; i < hi - lo; ++i) out[i] = src[i * g.stride_w];
      }
      out += hi - lo;
      std::fill(out, d + run.length, 0.0f);
    }
  }
}

}  // namespace fastconv::detail
