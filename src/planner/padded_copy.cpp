#include "planner/padded_copy.hpp"

#include <algorithm>
#include <cstring>

#include "core/aligned_buffer.hpp"
#include "direct/reference.hpp"

namespace fastconv::detail {

Geometry padded_copy_geometry(const Geometry& g) {
  ConvProblem p = g.problem;
  p.in_height = g.H + g.pad_t + g.pad_b;
  p.in_width = g.W + g.pad_l + g.pad_r;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  p.padding_mode = PadMode::Zeros;
  return Geometry(p);
}

std::size_t padded_copy_bytes(const Geometry& g) {
  const Geometry gp = padded_copy_geometry(g);
  return align_up(std::size_t(gp.N * gp.input_image()) * sizeof(float));
}

namespace {

class PaddedCopyConv final : public ConvImpl {
 public:
  PaddedCopyConv(const Geometry& g, std::unique_ptr<ConvImpl> inner)
      : g_(g), gp_(padded_copy_geometry(g)), inner_(std::move(inner)), copy_bytes_(padded_copy_bytes(g)) {}

  Algorithm algorithm() const override { return inner_->algorithm(); }
  std::string name() const override { return inner_->name() + "+padded_copy"; }
  std::string describe() const override {
    return inner_->describe() + "; " + to_string(g_.problem.padding_mode) + " padding through a padded copy of the input (" +
           std::to_string(copy_bytes_) + " bytes)";
  }
  std::size_t workspace_bytes() const override { return copy_bytes_ + inner_->workspace_bytes(); }
  void prepare(PlanMode mode) override { inner_->prepare(mode); }
  std::size_t packed_weights_floats() const override { return inner_->packed_weights_floats(); }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    inner_->pack_weights(w, bias, packed);
  }
  void set_epilogue(const Epilogue& e) override {
    epilogue_ = e;
    inner_->set_epilogue(e);
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    float* xp = static_cast<float*>(workspace);
    const PadMode mode = g_.problem.padding_mode;
    const int64_t Hp = gp_.H, Wp = gp_.W;
    pool.for_each(g_.N * g_.C, [&](int64_t nc, int) {
      const float* src = x + nc * g_.H * g_.W;
      float* dst = xp + nc * Hp * Wp;
      for (int64_t i = 0; i < Hp; ++i) {
        float* row = dst + i * Wp;
        const int64_t iy = padded_source_index(i - g_.pad_t, g_.H, mode);
        if (iy < 0) {
          std::fill(row, row + Wp, 0.0f);
          continue;
        }
        const float* s = src + iy * g_.W;
        for (int64_t j = 0; j < g_.pad_l; ++j) {
          const int64_t ix = padded_source_index(j - g_.pad_l, g_.W, mode);
          row[j] = ix < 0 ? 0.0f : s[ix];
        }
        std::memcpy(row + g_.pad_l, s, std::size_t(g_.W) * sizeof(float));
        for (int64_t j = g_.pad_l + g_.W; j < Wp; ++j) {
          const int64_t ix = padded_source_index(j - g_.pad_l, g_.W, mode);
          row[j] = ix < 0 ? 0.0f : s[ix];
        }
      }
    });
    inner_->execute(xp, packed, y, static_cast<char*>(workspace) + copy_bytes_, pool, residual);
  }
  WorkCounts work() const override {
    WorkCounts w = inner_->work();
    const double copied = double(gp_.N) * double(gp_.input_image());
    w.pack_elements += 0.25 * copied;  // contiguous rows, priced as im2col prices its 1x1 packing
    w.dram_bytes += 4.0 * (copied + double(g_.N) * double(g_.input_image()));
    return w;
  }

 private:
  Geometry g_, gp_;
  std::unique_ptr<ConvImpl> inner_;
  std::size_t copy_bytes_;
};

}  // namespace

std::unique_ptr<ConvImpl> wrap_padded_copy(const Geometry& g, std::unique_ptr<ConvImpl> inner) {
  return std::make_unique<PaddedCopyConv>(g, std::move(inner));
}

}  // namespace fastconv::detail
