#include "winograd/dilated_phases.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/phase_stats.hpp"

namespace fastconv::detail {
namespace {

// One axis of one phase: outputs p = p'*dil + residue for p' in [0, count); they read phase rows
// first + p' + r of the input rows of residue `input_residue`, r in [0, kernel).
struct AxisPhase {
  int64_t residue, count;
  int64_t input_residue, first;
  int64_t valid_begin = 0, valid_end = 0;  // phase positions [begin, end) inside the input: the rest is padding
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

// Where the gathered positions [0, span) of an axis phase fall inside the input of `size`:
// x = (first + i) * dil + input_residue, with 0 <= input_residue < dil, lies in [0, size) for
// first + i in [0, (size - 1 - input_residue) / dil].
void set_valid(AxisPhase& a, int64_t span, int64_t size, int64_t dil) {
  const int64_t last_in = size - 1 - a.input_residue;
  const int64_t lo = std::max<int64_t>(0, -a.first);
  const int64_t hi = last_in >= 0 ? std::min(span, last_in / dil - a.first + 1) : 0;  // exclusive
  if (lo < hi)
    a.valid_begin = lo, a.valid_end = hi;
  else
    a.valid_begin = a.valid_end = span;
}

class DilatedByPhases final : public ConvImpl {
 public:
  // `phases`: one per (row residue, column residue) with outputs; `sub` runs them all as a batch
  // of g.N * phases.size() images of the common phase size (smaller phases padded with zeros).
  DilatedByPhases(const Geometry& g, std::string name, std::vector<std::pair<AxisPhase, AxisPhase>> phases,
                  const Geometry& sub_geometry, std::unique_ptr<ConvImpl> sub)
      : g_(g), name_(std::move(name)), phases_(std::move(phases)), s_(sub_geometry), sub_(std::move(sub)) {}

  Algorithm algorithm() const override { return sub_->algorithm(); }
  std::string name() const override { return name_; }
  std::string describe() const override {
    std::ostringstream s;
    s << g_.dil_h << "x" << g_.dil_w << " dilation as " << phases_.size()
      << " undilated phase images of " << s_.H << "x" << s_.W
      << " run as one batch (input phases gathered with their padding, outputs scattered back): "
      << sub_->describe();
    return s.str();
  }
  std::size_t workspace_bytes() const override { return in_bytes() + out_bytes() + sub_->workspace_bytes(); }
  void prepare(PlanMode mode) override { sub_->prepare(mode); }
  std::size_t packed_weights_floats() const override { return sub_->packed_weights_floats(); }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    sub_->pack_weights(w, bias, packed);
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    const Geometry& s = s_;
    const int64_t phases = int64_t(phases_.size());
    float* xin = static_cast<float*>(workspace);
    float* yout = at_offset<float>(workspace, in_bytes());
    void* sub_ws = at_offset<void>(workspace, in_bytes() + out_bytes());
    // Gather: image (phase, n) of the batch, row i of a phase is input row (first + i) * dil +
    // input_residue; outside the input, and past a smaller phase's own size, zeros.
    pool.for_each(g.N * g.C, [&](int64_t nc, int) {
      ScopedPhase phase(3, "gather_scatter");
      const int64_t n = nc / g.C, c = nc % g.C;
      const float* src = x + nc * g.H * g.W;
      const int64_t dw = g.dil_w;
      for (int64_t f = 0; f < phases; ++f) {
        const AxisPhase& ph = phases_[std::size_t(f)].first;
        const AxisPhase& pw = phases_[std::size_t(f)].second;
        float* dst = xin + ((f * g.N + n) * g.C + c) * s.H * s.W;
        const int64_t j0 = pw.valid_begin, j1 = pw.valid_end;
        std::fill(dst, dst + ph.valid_begin * s.W, 0.0f);
        for (int64_t i = ph.valid_begin; i < ph.valid_end; ++i) {
          const int64_t base = ((ph.first + i) * g.dil_h + ph.input_residue) * g.W + pw.first * dw + pw.input_residue;
          float* row = dst + i * s.W;
          std::fill(row, row + j0, 0.0f);
          for (int64_t j = j0; j < j1; ++j) row[j] = src[base + j * dw];
          std::fill(row + j1, row + s.W, 0.0f);
        }
        std::fill(dst + ph.valid_end * s.W, dst + s.H * s.W, 0.0f);
      }
    });
    sub_->execute(xin, packed, yout, sub_ws, pool);
    // Scatter each phase's outputs back to rows residue + p' * dil and columns likewise, the
    // post-ops applied on the way: a piece of a row and its residual gathered on the stack (the
    // residual may be y: each value read before that output is written).
    pool.for_each(g.N * g.K, [&](int64_t nk, int) {
      ScopedPhase phase(3, "gather_scatter");
      const int64_t n = nk / g.K, k = nk % g.K;
      float* dst = y + nk * g.P * g.Q;
      const float* rk = residual ? residual + nk * g.P * g.Q : nullptr;
      for (int64_t f = 0; f < phases; ++f) {
        const AxisPhase& ph = phases_[std::size_t(f)].first;
        const AxisPhase& pw = phases_[std::size_t(f)].second;
        const float* src = yout + ((f * g.N + n) * g.K + k) * s.P * s.Q;
        if (!epilogue_.active()) {
          for (int64_t p = 0; p < ph.count; ++p) {
            float* row = dst + (p * g.dil_h + ph.residue) * g.Q + pw.residue;
            for (int64_t q = 0; q < pw.count; ++q) row[q * g.dil_w] = src[p * s.Q + q];
          }
          continue;
        }
        constexpr int64_t kPiece = 256;
        alignas(64) float line[kPiece], res[kPiece];
        for (int64_t p = 0; p < ph.count; ++p) {
          const int64_t row = (p * g.dil_h + ph.residue) * g.Q + pw.residue;
          for (int64_t q0 = 0; q0 < pw.count; q0 += kPiece) {
            const int64_t cnt = std::min(kPiece, pw.count - q0);
            if (rk)
              for (int64_t q = 0; q < cnt; ++q) res[q] = rk[row + (q0 + q) * g.dil_w];
            epilogue_.apply_from(src + p * s.Q + q0, 0, line, rk ? res : nullptr, 0, 1, cnt);
            for (int64_t q = 0; q < cnt; ++q) dst[row + (q0 + q) * g.dil_w] = line[q];
          }
        }
      }
    });
  }
  WorkCounts work() const override {
    WorkCounts w = sub_->work();
    // Gathering and scattering: every phase element once, one at a time, strided on the input side
    // and written out through memory (the phases with their halos are 2-4x the input on large
    // dilations): priced as im2col's strided gather, three flat copies per element (measured
    // 28-50% of the CPU time on ASPP at dilation 12 and 24, AVX-512 Xeon).
    w.pack_elements += 3.0 * double(s_.N) * double(s_.input_image() + s_.output_image());
    return w;
  }

 private:
  std::size_t in_bytes() const { return align_up(std::size_t(s_.N * s_.input_image()) * sizeof(float)); }
  std::size_t out_bytes() const { return align_up(std::size_t(s_.N * s_.output_image()) * sizeof(float)); }

  Geometry g_;
  std::string name_;
  std::vector<std::pair<AxisPhase, AxisPhase>> phases_;
  Geometry s_;
  std::unique_ptr<ConvImpl> sub_;
};

}  // namespace

std::unique_ptr<ConvImpl> make_dilated_by_phases(const Geometry& g, const PlanContext& ctx, const std::string& family,
                                                 const PhaseImplFactory& make, std::string* why, int64_t tile) {
  if (g.stride_h != 1 || g.stride_w != 1) {
    *why = "dilation phases need stride 1";
    return nullptr;
  }
  // Every phase at the size of the largest (the residues below out % dil have one output more):
  // one batch, one set of packed weights, GEMM panels filled across phases.
  // Residues past the output size have no outputs.
  const int64_t residues_h = std::min(g.dil_h, g.P), residues_w = std::min(g.dil_w, g.Q);
  if (residues_h * residues_w > kMaxSubproblemPhases) {
    *why = "dilation phases: " + std::to_string(residues_h * residues_w) + " (at most " + std::to_string(kMaxSubproblemPhases) + ")";
    return nullptr;
  }
  std::vector<std::pair<AxisPhase, AxisPhase>> phases;
  int64_t rows = 0, cols = 0;
  for (int64_t ah = 0; ah < residues_h; ++ah)
    for (int64_t aw = 0; aw < residues_w; ++aw) {
      const AxisPhase ph = axis_phase(ah, g.P, g.pad_t, g.dil_h), pw = axis_phase(aw, g.Q, g.pad_l, g.dil_w);
      if (ph.count == 0 || pw.count == 0) continue;  // more residues than outputs
      phases.emplace_back(ph, pw);
      rows = std::max(rows, ph.count), cols = std::max(cols, pw.count);
    }
  // A valid convolution over the gathered phases: count + kernel - 1 rows and columns, the counts
  // rounded up to whole tiles of the phase algorithm so that no tile needs its border path.
  rows = round_up(rows, tile), cols = round_up(cols, tile);
  for (auto& [ph, pw] : phases) {
    set_valid(ph, std::min(rows, ph.count) + g.R - 1, g.H, g.dil_h);
    set_valid(pw, std::min(cols, pw.count) + g.S - 1, g.W, g.dil_w);
  }
  ConvProblem p = g.problem;
  p.batch = g.N * int64_t(phases.size());
  p.in_height = rows + g.R - 1, p.in_width = cols + g.S - 1;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  p.dilation_h = p.dilation_w = 1;
  p.padding_mode = PadMode::Zeros;
  const Geometry s(p);
  // The gathered phases and their outputs come out of the budget first.
  const double buffers = 4.0 * double(s.N) * double(s.input_image() + s.output_image()) + 128;
  if (buffers > double(ctx.workspace_limit)) {
    *why = workspace_too_small(std::size_t(std::min(buffers, 1e18)), ctx.workspace_limit);
    return nullptr;
  }
  PlanContext sub_ctx = ctx;
  sub_ctx.workspace_limit = ctx.workspace_limit - std::size_t(buffers);
  sub_ctx.epilogue = Epilogue();  // the post-ops run at the scatter
  std::unique_ptr<ConvImpl> sub = make(s, sub_ctx, why);
  if (!sub) return nullptr;
  // "winograd_f4x4_3x3_6x16__avx2" -> "winograd_f4x4_3x3_dilated_6x16__avx2"
  std::string name = sub->name();
  if (name.compare(0, family.size(), family) == 0)
    name.insert(family.size(), "_dilated");
  else
    name += "_dilated";
  return std::make_unique<DilatedByPhases>(g, std::move(name), std::move(phases), s, std::move(sub));
}

}  // namespace fastconv::detail
