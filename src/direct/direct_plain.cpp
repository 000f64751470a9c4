#include "direct/direct_plain.hpp"

#include <algorithm>
#include <cstring>

namespace fastconv::detail {
namespace {

class DirectPlain final : public ConvImpl {
 public:
  explicit DirectPlain(const Geometry& g) : g_(g) {}
  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return "direct_plain"; }
  std::string describe() const override {
    return "plain loops, one task per (image, output channel), no workspace";
  }
  std::size_t workspace_bytes() const override { return 0; }
  std::size_t packed_weights_floats() const override {
    return std::size_t(g_.K * g_.Cg * g_.R * g_.S + g_.K);
  }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    const int64_t nw = g_.K * g_.Cg * g_.R * g_.S;
    std::memcpy(packed, w, sizeof(float) * nw);
    for (int64_t k = 0; k < g_.K; ++k) packed[nw + k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void*, const ThreadPool& pool) const override {
    const Geometry& g = g_;
    const float* bias = packed + g.K * g.Cg * g.R * g.S;
    pool.for_each(g.N * g.K, [&](int64_t nk, int) {
      const int64_t n = nk / g.K, k = nk % g.K, group = k / g.Kg;
      float* out = y + nk * g.P * g.Q;
      std::fill(out, out + g.P * g.Q, bias[k]);
      for (int64_t cg = 0; cg < g.Cg; ++cg) {
        const float* xc = x + (n * g.C + group * g.Cg + cg) * g.H * g.W;
        for (int64_t r = 0; r < g.R; ++r) {
          const Range rows = valid_outputs(g.P, g.stride_h, r * g.dil_h - g.pad_t, g.H);
          for (int64_t s = 0; s < g.S; ++s) {
            const float wv = packed[((k * g.Cg + cg) * g.R + r) * g.S + s];
            const int64_t x_off = s * g.dil_w - g.pad_l;
            const Range cols = valid_outputs(g.Q, g.stride_w, x_off, g.W);
            if (cols.size() == 0) continue;
            for (int64_t p = rows.begin; p < rows.end; ++p) {
              // From the first valid column on, so that no pointer leaves the input.
              const float* xrow = xc + (p * g.stride_h + r * g.dil_h - g.pad_t) * g.W + cols.begin * g.stride_w + x_off;
              float* orow = out + p * g.Q + cols.begin;
              for (int64_t i = 0; i < cols.size(); ++i) orow[i] += wv * xrow[i * g.stride_w];
            }
          }
        }
      }
    });
  }
  WorkCounts work() const override {
    WorkCounts w;
    w.scalar_flops = flop_count(g_.problem);
    w.parallel_tasks = double(g_.N * g_.K);
    return w;
  }

 private:
  Geometry g_;
};

}  // namespace

void propose_direct_plain(const Geometry& g, const PlanContext&, Proposals& out) {
  out.add(std::make_unique<DirectPlain>(g));
}

}  // namespace fastconv::detail
