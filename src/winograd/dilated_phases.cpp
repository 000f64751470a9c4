#include "winograd/dilated_phases.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"

namespace fastconv::detail {
namespace {

// One axis of one phase: outputs p = p'*dil + residue for p' in [0, count); they read phase rows
// first + p' + r of the input rows of residue `input_residue`, r in [0, kernel).
struct AxisPhase {
  int64_t residue, count;
  int64_t input_residue, first;
  int64_t gathered() const { return count > 0 ? count : 0; }
};

AxisPhase axis_phase(int64_t residue, int64_t out, int64_t pad, int64_t dil) {
  AxisPhase a;
  a.residue = residue;
  a.count = residue < out ? (out - residue + dil - 1) / dil : 0;
  // Input position of tap r: (p' + r) * dil + residue - pad = (p' + r + first) * dil + input_residue.
  const int64_t off = residue - pad;
  a.input_residue = ((off % dil) + dil) % dil;
  a.first = (off - a.input_residue) / dil;
  return a;
}

struct Phase {
  AxisPhase h, w;
  int sub;  // index of the implementation (phases of equal size share one)
};

class DilatedByPhases final : public ConvImpl {
 public:
  DilatedByPhases(const Geometry& g, std::string name, std::vector<Phase> phases, std::vector<Geometry> geoms,
                  std::vector<std::unique_ptr<ConvImpl>> subs)
      : g_(g), name_(std::move(name)), phases_(std::move(phases)), geoms_(std::move(geoms)), subs_(std::move(subs)) {
    for (const Geometry& s : geoms_) {
      in_floats_ = std::max(in_floats_, std::size_t(s.N * s.input_image()));
      out_floats_ = std::max(out_floats_, std::size_t(s.N * s.output_image()));
    }
    for (const auto& s : subs_) sub_workspace_ = std::max(sub_workspace_, s->workspace_bytes());
    std::size_t at = 0;
    for (const auto& s : subs_) packed_at_.push_back(at), at += s->packed_weights_floats();
    packed_floats_ = at;
  }

  Algorithm algorithm() const override { return subs_.front()->algorithm(); }
  std::string name() const override { return name_; }
  std::string describe() const override {
    std::ostringstream s;
    s << g_.dil_h << "x" << g_.dil_w << " dilation as " << phases_.size()
      << " undilated phase problems (input phases gathered with their padding, outputs scattered back), each: "
      << subs_.front()->describe();
    return s.str();
  }
  std::size_t workspace_bytes() const override {
    return align_up(in_floats_ * sizeof(float)) + align_up(out_floats_ * sizeof(float)) + sub_workspace_;
  }
  void prepare(PlanMode mode) override {
    for (auto& s : subs_) s->prepare(mode);
  }
  std::size_t packed_weights_floats() const override { return packed_floats_; }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    for (std::size_t i = 0; i < subs_.size(); ++i) subs_[i]->pack_weights(w, bias, packed + packed_at_[i]);
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    float* xin = static_cast<float*>(workspace);
    float* yout = at_offset<float>(workspace, align_up(in_floats_ * sizeof(float)));
    void* sub_ws = at_offset<void>(workspace, align_up(in_floats_ * sizeof(float)) + align_up(out_floats_ * sizeof(float)));
    for (const Phase& ph : phases_) {
      const Geometry& s = geoms_[std::size_t(ph.sub)];
      // Gather the input phase, its padding as zeros: row i of the phase image is input row
      // (first + i) * dil + input_residue.
      pool.for_each(g.N * g.C, [&](int64_t nc, int) {
        const float* src = x + nc * g.H * g.W;
        float* dst = xin + nc * s.H * s.W;
        for (int64_t i = 0; i < s.H; ++i) {
          const int64_t iy = (ph.h.first + i) * g.dil_h + ph.h.input_residue;
          float* row = dst + i * s.W;
          if (iy < 0 || iy >= g.H) {
            std::fill(row, row + s.W, 0.0f);
            continue;
          }
          for (int64_t j = 0; j < s.W; ++j) {
            const int64_t ix = (ph.w.first + j) * g.dil_w + ph.w.input_residue;
            row[j] = ix >= 0 && ix < g.W ? src[iy * g.W + ix] : 0.0f;
          }
        }
      });
      subs_[std::size_t(ph.sub)]->execute(xin, packed + packed_at_[std::size_t(ph.sub)], yout, sub_ws, pool);
      // Scatter its outputs back to rows residue + p' * dil and columns likewise.
      pool.for_each(g.N * g.K, [&](int64_t nk, int) {
        const float* src = yout + nk * s.P * s.Q;
        float* dst = y + nk * g.P * g.Q;
        if (!epilogue_.active()) {
          for (int64_t p = 0; p < s.P; ++p)
            for (int64_t q = 0; q < s.Q; ++q)
              dst[(p * g.dil_h + ph.h.residue) * g.Q + q * g.dil_w + ph.w.residue] = src[p * s.Q + q];
          return;
        }
        // Post-ops as the outputs go out: a piece of a row and its residual gathered on the stack
        // (the residual may be y: read before y is written), the epilogue, the scatter.
        constexpr int64_t kPiece = 256;
        alignas(64) float line[kPiece], res[kPiece];
        const float* rk = residual ? residual + nk * g.P * g.Q : nullptr;
        for (int64_t p = 0; p < s.P; ++p) {
          const int64_t row = (p * g.dil_h + ph.h.residue) * g.Q + ph.w.residue;
          for (int64_t q0 = 0; q0 < s.Q; q0 += kPiece) {
            const int64_t n = std::min(kPiece, s.Q - q0);
            if (rk)
              for (int64_t q = 0; q < n; ++q) res[q] = rk[row + (q0 + q) * g.dil_w];
            epilogue_.apply_from(src + p * s.Q + q0, 0, line, rk ? res : nullptr, 0, 1, n);
            for (int64_t q = 0; q < n; ++q) dst[row + (q0 + q) * g.dil_w] = line[q];
          }
        }
      });
    }
  }
  WorkCounts work() const override {
    WorkCounts w;
    for (const Phase& ph : phases_) {
      const WorkCounts s = subs_[std::size_t(ph.sub)]->work();
      w.gemm_flops += s.gemm_flops, w.transform_flops += s.transform_flops, w.pack_elements += s.pack_elements;
      w.dram_bytes += s.dram_bytes, w.scalar_flops += s.scalar_flops;
      w.gemm_m = s.gemm_m, w.gemm_n = s.gemm_n, w.gemm_k = s.gemm_k;
      w.parallel_tasks = std::max(w.parallel_tasks, s.parallel_tasks);
    }
    // Gathering and scattering: every input and output element once, one at a time.
    w.pack_elements += 2.0 * double(g_.N) * double(g_.input_image() + g_.output_image());
    return w;
  }

 private:
  Geometry g_;
  std::string name_;
  std::vector<Phase> phases_;
  std::vector<Geometry> geoms_;
  std::vector<std::unique_ptr<ConvImpl>> subs_;
  std::vector<std::size_t> packed_at_;
  std::size_t packed_floats_ = 0, in_floats_ = 0, out_floats_ = 0, sub_workspace_ = 0;
};

}  // namespace

std::unique_ptr<ConvImpl> make_dilated_by_phases(const Geometry& g, const PlanContext& ctx, const std::string& family,
                                                 const PhaseImplFactory& make, std::string* why) {
  if (g.stride_h != 1 || g.stride_w != 1) {
    *why = "dilation phases need stride 1";
    return nullptr;
  }
  std::vector<Phase> phases;
  std::vector<Geometry> geoms;
  std::size_t in_floats = 0, out_floats = 0;
  for (int64_t ah = 0; ah < g.dil_h; ++ah)
    for (int64_t aw = 0; aw < g.dil_w; ++aw) {
      Phase ph{axis_phase(ah, g.P, g.pad_t, g.dil_h), axis_phase(aw, g.Q, g.pad_l, g.dil_w), -1};
      if (ph.h.count == 0 || ph.w.count == 0) continue;  // more residues than outputs
      // A valid convolution over the gathered phase: count + kernel - 1 rows and columns.
      ConvProblem p = g.problem;
      p.in_height = ph.h.count + g.R - 1, p.in_width = ph.w.count + g.S - 1;
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
      p.dilation_h = p.dilation_w = 1;
      for (std::size_t i = 0; i < geoms.size(); ++i)
        if (geoms[i].problem == p) ph.sub = int(i);
      if (ph.sub < 0) {
        ph.sub = int(geoms.size());
        geoms.emplace_back(p);
        in_floats = std::max(in_floats, std::size_t(geoms.back().N * geoms.back().input_image()));
        out_floats = std::max(out_floats, std::size_t(geoms.back().N * geoms.back().output_image()));
      }
      phases.push_back(ph);
    }
  // The gathered phase and its outputs come out of the budget first.
  const std::size_t buffers = align_up(in_floats * sizeof(float)) + align_up(out_floats * sizeof(float));
  if (buffers > ctx.workspace_limit) {
    *why = workspace_too_small(buffers, ctx.workspace_limit);
    return nullptr;
  }
  PlanContext sub_ctx = ctx;
  sub_ctx.workspace_limit = ctx.workspace_limit - buffers;
  std::vector<std::unique_ptr<ConvImpl>> subs;
  for (const Geometry& s : geoms) {
    subs.push_back(make(s, sub_ctx, why));
    if (!subs.back()) return nullptr;
  }
  // "winograd_f4x4_3x3_6x16__avx2" -> "winograd_f4x4_3x3_dilated_6x16__avx2"
  std::string name = subs.front()->name();
  if (name.compare(0, family.size(), family) == 0)
    name.insert(family.size(), "_dilated");
  else
    name += "_dilated";
  return std::make_unique<DilatedByPhases>(g, std::move(name), std::move(phases), std::move(geoms), std::move(subs));
}

}  // namespace fastconv::detail
