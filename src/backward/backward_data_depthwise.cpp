// Backward-data of a depthwise convolution at stride 2 (MobileNet's downsampling 3x3s): the input
// gradient straight from dy, a channel per task, without the stride phases' scratch images and
// scatters (four phases of 1x1 to 2x2 depthwise kernels, each its own parallel region, ran it at
// half oneDNN's speed). DotKernels::depthwise_s2_data computes both column phases of a dx row as
// vectors and interleaves them as it stores. Every dx element is one sum in a fixed order: bitwise
// the same for any thread count.
#include <cstring>
#include <memory>
#include <sstream>

#include "backward/backward_data.hpp"
#include "backward/dot_kernels.hpp"
#include "core/checked.hpp"

namespace fastconv::detail {
namespace {

class BackwardDataDepthwiseS2 final : public ConvImpl {
 public:
  BackwardDataDepthwiseS2(const Geometry& g, const DotKernels& kernels, Isa isa) : g_(g), k_(kernels), isa_(isa) {}

  Direction direction() const override { return Direction::BackwardData; }
  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return std::string("bwd_data_depthwise_s2__") + isa_name(isa_); }
  std::string describe() const override {
    std::ostringstream s;
    s << "depthwise at stride 2 from dy in place: both column phases of a dx row as " << k_.lanes
      << "-lane vectors, interleaved; " << g_.N * g_.C << " tasks (image, channel)";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return 0; }
  // The weights as given, then the bias of dx's channels.
  std::size_t packed_weights_floats() const override { return std::size_t(g_.K * g_.R * g_.S + g_.C); }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    std::memcpy(packed, w, sizeof(float) * std::size_t(g_.K * g_.R * g_.S));
    float* b = packed + g_.K * g_.R * g_.S;
    for (int64_t c = 0; c < g_.C; ++c) b[c] = bias ? bias[c] : 0.0f;
  }
  // input: dy [N, K, P, Q]; output: dx [N, C, H, W]. K = C: output channel c reads input channel c.
  void execute(const float* dy, const float* packed, float* dx, void*, const ThreadPool& pool,
               const float*) const override {
    const Geometry& g = g_;
    pool.for_each(g.N * g.C, [&](int64_t nc, int) {
      const int64_t c = nc % g.C;
      DepthwiseS2Data a;
      a.dy = dy + nc * g.P * g.Q, a.P = g.P, a.Q = g.Q;
      a.w = packed + c * g.R * g.S, a.R = g.R, a.S = g.S, a.pad_t = g.pad_t, a.pad_l = g.pad_l;
      a.bias = packed[g.K * g.R * g.S + c];
      a.dx = dx + nc * g.H * g.W, a.H = g.H, a.W = g.W;
      k_.depthwise_s2_data(a);
    });
  }

  WorkCounts work() const override {
    WorkCounts w;
    // Per dx pixel about half the taps (the row parity), over whole vectors of both phases.
    const double width = double(round_up(ceil_div(g_.W, int64_t(2)), int64_t(k_.lanes))) * 2.0;
    w.depthwise_flops = 2.0 * double(g_.N * g_.C) * double(g_.H) * width * double(g_.R * g_.S) * 0.5;
    w.dram_bytes = 4.0 * double(g_.N) * double(g_.input_image() + g_.output_image());
    w.parallel_tasks = double(g_.N * g_.C);
    return w;
  }

 private:
  Geometry g_;
  const DotKernels& k_;
  Isa isa_;
};

}  // namespace

void propose_backward_data_depthwise(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const char* label = "bwd_data_depthwise_s2";
  if (g.groups != g.C || g.K != g.C)
    return out.decline(label, "not depthwise with one output channel per input channel");
  if (g.stride_h != 2 || g.stride_w != 2 || g.dil_h != 1 || g.dil_w != 1)
    return out.decline(label, "stride 2 and dilation 1 only (the stride phases take the rest)");
  if (g.S > 16) return out.decline(label, "kernels wider than 16");
  out.add(std::make_unique<BackwardDataDepthwiseS2>(g, dot_kernels(ctx.isa), ctx.isa));
}

}  // namespace fastconv::detail
