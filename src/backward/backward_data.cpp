// Backward-data as forward convolutions (the stride-phase decomposition, no zero insertion).
//
// dx[h] = sum_{r, p: h = p*stride - pad + r*dil} dy[p] * w[r] on each axis. The rows h = ph + stride*i
// of one phase ph see only the taps r with (ph + pad - r*dil) divisible by the stride, and for them
// p = i + (ph + pad - r*dil)/stride: a stride-1 cross-correlation of dy with the sub-kernel of those
// taps in reverse order (dilation dil/gcd(stride, dil)), channels transposed (C outputs from K
// inputs, same groups). So every phase is a forward problem, planned by the forward solvers, and
// every forward algorithm (direct and depthwise, im2col, Winograd, FFT) with its own blocking and
// workspace budget serves backward-data. Phases write disjoint pixels of dx, so the result does not
// depend on the thread count. A sub-problem padding that comes out negative is a crop of dy (a copy);
// a phase with no taps, or whose cropped dy is empty, is zero (plus the bias). Stride 1 without crop
// is one phase written straight into dx; otherwise images run a few at a time (as many as fit
// kBatchScratchBytes of scratch, a divisor of the batch), each phase into scratch images then
// scattered into dx: small layers pay a parallel region per phase and batch, not per image.
#include "backward/backward_data.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>
#include <type_traits>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "planner/planner.hpp"
#include "planner/solvers.hpp"

namespace fastconv::detail {
namespace {

// One phase of one axis.
struct AxisPhase {
  int64_t first = 0;          // first dx row of the phase
  int64_t count = 0;          // its rows: first + stride*i, i < count
  std::vector<int64_t> taps;  // kernel rows in the sub-kernel's order (descending)
  int64_t dilation = 1;       // of the sub-kernel
  int64_t pad_begin = 0, pad_end = 0;    // of the sub-problem (>= 0)
  int64_t crop_begin = 0, crop_end = 0;  // dy rows cut off
  int64_t in_size = 0;                   // dy rows left
  bool zero() const { return taps.empty() || in_size < 1; }
  bool cropped() const { return crop_begin > 0 || crop_end > 0; }
};

int64_t floor_mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

constexpr std::size_t kBatchScratchBytes = std::size_t(2) << 20;  // the phases' scratch for a batch of images

// in: dx size (H), out: dy size (P).
std::vector<AxisPhase> axis_phases(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dil, int64_t pad) {
  std::vector<AxisPhase> phases;
  for (int64_t ph = 0; ph < std::min(stride, in); ++ph) {
    AxisPhase a;
    a.first = ph;
    a.count = ceil_div(in - ph, stride);
    for (int64_t r = kernel - 1; r >= 0; --r)
      if (floor_mod(ph + pad - r * dil, stride) == 0) a.taps.push_back(r);
    if (!a.taps.empty()) {
      const int64_t m = int64_t(a.taps.size());
      a.dilation = m > 1 ? (a.taps[0] - a.taps[1]) * dil / stride : 1;
      const int64_t top = -((ph + pad - a.taps[0] * dil) / stride);  // exact division
      const int64_t bottom = a.count - out - top + a.dilation * (m - 1);
      a.crop_begin = std::max<int64_t>(0, -top), a.pad_begin = std::max<int64_t>(0, top);
      a.crop_end = std::max<int64_t>(0, -bottom), a.pad_end = std::max<int64_t>(0, bottom);
      a.in_size = out - a.crop_begin - a.crop_end;
    }
    phases.push_back(std::move(a));
  }
  return phases;
}

struct Phase {
  AxisPhase h, w;
  std::unique_ptr<ConvImpl> impl;  // null: a zero phase
  std::size_t packed_offset = 0;   // floats
};

std::string join_unique(const std::vector<Phase>& phases) {
  std::vector<std::string> names;
  for (const auto& ph : phases)
    if (ph.impl && std::find(names.begin(), names.end(), ph.impl->name()) == names.end())
      names.push_back(ph.impl->name());
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : "+") + n;
  return s;
}

class BackwardDataConv final : public ConvImpl {
 public:
  // crop_floats, image_floats: the scratch of `batch` images.
  BackwardDataConv(const Geometry& g, Algorithm algorithm, std::vector<Phase> phases, bool direct_mode, int64_t batch,
                   std::size_t crop_floats, std::size_t image_floats, int threads)
      : g_(g), algorithm_(algorithm), phases_(std::move(phases)), direct_mode_(direct_mode), batch_(batch),
        threads_(threads), crop_bytes_(align_up(crop_floats * sizeof(float))),
        image_bytes_(align_up(image_floats * sizeof(float))) {
    std::size_t offset = 0;
    for (auto& ph : phases_) {
      ph.packed_offset = offset;
      // Each phase's weights start 64-byte aligned, as the plan's own packed buffer does.
      if (ph.impl)
        offset += align_up(ph.impl->packed_weights_floats() * sizeof(float)) / sizeof(float),
            sub_bytes_ = std::max(sub_bytes_, ph.impl->workspace_bytes());
    }
    packed_floats_ = offset + std::size_t(g.C);  // then the bias for the zero phases
  }

  Direction direction() const override { return Direction::BackwardData; }
  Algorithm algorithm() const override { return algorithm_; }
  std::string name() const override { return "bwd_data_" + to_string(algorithm_) + "(" + join_unique(phases_) + ")"; }
  std::string describe() const override {
    std::ostringstream s;
    s << phases_.size() << " stride phase" << (phases_.size() > 1 ? "s" : "")
      << (direct_mode_ ? ", straight into dx"
                       : ", " + std::to_string(batch_) + " image" + (batch_ > 1 ? "s" : "") +
                             " at a time through scratch images");
    for (const auto& ph : phases_) {
      s << "; [" << ph.h.first << "," << ph.w.first << "] ";
      if (!ph.impl) {
        s << "zero";
        continue;
      }
      s << ph.impl->name() << " " << to_string(sub_problem(ph, batch_))
        << " {" << ph.impl->describe() << "}";
    }
    return s.str();
  }
  std::size_t workspace_bytes() const override { return crop_bytes_ + image_bytes_ + align_up(sub_bytes_); }
  void prepare(PlanMode mode) override {
    for (auto& ph : phases_)
      if (ph.impl) ph.impl->prepare(mode);
  }
  std::size_t packed_weights_floats() const override { return packed_floats_; }

  void pack_weights(const float* w, const float* bias, float* packed) const override {
    const Geometry& g = g_;
    for (const auto& ph : phases_) {
      if (!ph.impl) continue;
      // The sub-kernel: [C, K/g, taps_h, taps_w], w[k, c, r, s] at [c, k - group*Kg, j, l].
      const int64_t mh = int64_t(ph.h.taps.size()), mw = int64_t(ph.w.taps.size());
      // Every element is written below: no zeroing (in training this runs every step). Blocks of
      // 16 channels by 16 output channels: both sides then read and write runs of a few hundred
      // bytes (channel by channel, each read jumped C*R*S floats: a cache miss per kernel). The
      // plan's threads share the channel blocks.
      constexpr int64_t kTile = 16;
      const std::unique_ptr<float[]> sub(new float[std::size_t(g.C * g.Kg * mh * mw)]);
      std::vector<int64_t> tap_at(std::size_t(mh * mw));  // where sub-kernel tap (j, l) is in a w kernel
      for (int64_t j = 0; j < mh; ++j)
        for (int64_t l = 0; l < mw; ++l) tap_at[std::size_t(j * mw + l)] = ph.h.taps[j] * g.S + ph.w.taps[l];
      const int64_t taps = mh * mw;
      const int64_t* at = tap_at.data();
      // The 3x3 phase of a stride-1 layer (the common case in training) with its 9 taps unrolled:
      // the loop over a run-time tap count cost as much as the copy.
      auto gather = [&](auto fixed_taps) {
        constexpr int64_t kTaps = decltype(fixed_taps)::value;
        ThreadPool(threads_).for_each(ceil_div(g.C, kTile), [&](int64_t cb, int) {
          const int64_t c0 = cb * kTile, c1 = std::min(g.C, c0 + kTile);
          int64_t tap[kTaps > 0 ? kTaps : 1];
          for (int64_t t = 0; t < kTaps; ++t) tap[t] = at[t];
          for (int64_t k0 = 0; k0 < g.Kg; k0 += kTile)
            for (int64_t c = c0; c < c1; ++c) {
              const int64_t grp = c / g.Cg, cg = c % g.Cg;
              for (int64_t kk = k0; kk < std::min(g.Kg, k0 + kTile); ++kk) {
                const float* from = w + ((grp * g.Kg + kk) * g.Cg + cg) * g.R * g.S;
                float* to = sub.get() + (c * g.Kg + kk) * taps;
                if constexpr (kTaps > 0)
                  for (int64_t t = 0; t < kTaps; ++t) to[t] = from[tap[t]];
                else
                  for (int64_t t = 0; t < taps; ++t) to[t] = from[at[t]];
              }
            }
        });
      };
      if (taps == 9)
        gather(std::integral_constant<int64_t, 9>());
      else
        gather(std::integral_constant<int64_t, 0>());
      ph.impl->pack_weights(sub.get(), bias, packed + ph.packed_offset);
    }
    float* b = packed + packed_floats_ - g.C;
    for (int64_t c = 0; c < g.C; ++c) b[c] = bias ? bias[c] : 0.0f;
  }

  // input: dy [N, K, P, Q]; output: dx [N, C, H, W].
  void execute(const float* dy, const float* packed, float* dx, void* workspace, const ThreadPool& pool,
               const float* /*residual: backward plans have no post-ops*/) const override {
    const Geometry& g = g_;
    char* ws = static_cast<char*>(workspace);
    if (direct_mode_) {
      phases_[0].impl->execute(dy, packed + phases_[0].packed_offset, dx, ws, pool);
      return;
    }
    float* crop = reinterpret_cast<float*>(ws);
    float* image = reinterpret_cast<float*>(ws + crop_bytes_);
    void* sub_ws = ws + crop_bytes_ + image_bytes_;
    const float* bias = packed + packed_floats_ - g.C;
    for (int64_t n0 = 0; n0 < g.N; n0 += batch_) {
      const float* dy_n = dy + n0 * g.output_image();
      float* dx_n = dx + n0 * g.input_image();
      for (const auto& ph : phases_) {
        const int64_t ch = ph.h.count, cw = ph.w.count;
        if (ph.impl) {
          const float* src = dy_n;
          if (ph.h.cropped() || ph.w.cropped()) {
            const int64_t ih = ph.h.in_size, iw = ph.w.in_size;
            pool.for_each(batch_ * g.K, [&](int64_t k, int) {  // k: image * K + channel
              for (int64_t i = 0; i < ih; ++i)
                std::memcpy(crop + (k * ih + i) * iw, dy_n + (k * g.P + i + ph.h.crop_begin) * g.Q + ph.w.crop_begin,
                            sizeof(float) * std::size_t(iw));
            });
            src = crop;
          }
          ph.impl->execute(src, packed + ph.packed_offset, image, sub_ws, pool);
        }
        // Scatter the phase images into their rows and columns of dx (or its bias, for a zero phase).
        pool.for_each(batch_ * g.C, [&](int64_t nc, int) {  // nc: image * C + channel
          const int64_t c = nc % g.C;
          for (int64_t i = 0; i < ch; ++i) {
            float* row = dx_n + (nc * g.H + ph.h.first + i * g.stride_h) * g.W + ph.w.first;
            if (ph.impl) {
              const float* from = image + (nc * ch + i) * cw;
              for (int64_t j = 0; j < cw; ++j) row[j * g.stride_w] = from[j];
            } else {
              for (int64_t j = 0; j < cw; ++j) row[j * g.stride_w] = bias[c];
            }
          }
        });
      }
    }
  }

  WorkCounts work() const override {
    WorkCounts total;
    for (const auto& ph : phases_)
      if (ph.impl) total += ph.impl->work() * double(g_.N / batch_);
    if (!direct_mode_) total.dram_bytes += 8.0 * double(g_.N) * double(g_.input_image() + g_.output_image());
    return total;
  }

  ConvProblem sub_problem(const Phase& ph, int64_t batch) const { return make_sub_problem(g_, ph.h, ph.w, batch); }

  static ConvProblem make_sub_problem(const Geometry& g, const AxisPhase& h, const AxisPhase& w, int64_t batch) {
    ConvProblem p;
    p.batch = batch, p.in_channels = g.K, p.in_height = h.in_size, p.in_width = w.in_size;
    p.out_channels = g.C, p.kernel_height = int64_t(h.taps.size()), p.kernel_width = int64_t(w.taps.size());
    p.pad_top = h.pad_begin, p.pad_bottom = h.pad_end, p.pad_left = w.pad_begin, p.pad_right = w.pad_end;
    p.dilation_h = h.dilation, p.dilation_w = w.dilation;
    p.groups = g.groups;
    return p;
  }

 private:
  Geometry g_;
  Algorithm algorithm_;
  std::vector<Phase> phases_;
  bool direct_mode_;
  int64_t batch_;  // images per execute of the phases
  int threads_;
  std::size_t crop_bytes_, image_bytes_, sub_bytes_ = 0, packed_floats_ = 0;
};

// The fastest estimated forward implementation of `algorithm` (Auto: of any; of the solver named
// `solver` only, when given) for a sub-problem.
std::unique_ptr<ConvImpl> best_forward(const Geometry& sub, const PlanContext& ctx, Algorithm algorithm,
                                       std::string* declined, const char* solver = nullptr) {
  std::unique_ptr<ConvImpl> best;
  double best_s = 1e300;
  for (const Solver& s : all_solvers()) {
    if (s.direction != Direction::Forward || (algorithm != Algorithm::Auto && s.algorithm != algorithm)) continue;
    if (solver && std::string(s.name) != solver) continue;
    Proposals props;
    s.propose(sub, ctx, props);
    for (auto& impl : props.impls()) {
      if (impl->workspace_bytes() > ctx.workspace_limit) continue;
      const double t = estimate_seconds(impl->work(), ctx);
      if (t < best_s) best_s = t, best = std::move(impl);
    }
    if (declined && !props.declined().empty()) *declined = props.declined().front().reason;
  }
  return best;
}

}  // namespace

template <Algorithm A>
void propose_backward_data(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const std::string label = "bwd_data_" + to_string(A);
  // One sub-plan per stride phase, at most kMaxSubproblemPhases of them.
  const int64_t phase_count = std::min(g.stride_h, g.H) * std::min(g.stride_w, g.W);
  if (phase_count > kMaxSubproblemPhases) {
    out.decline(label, "stride phases: " + std::to_string(phase_count) + " (at most " + std::to_string(kMaxSubproblemPhases) + ")");
    return;
  }
  const auto rows = axis_phases(g.H, g.P, g.R, g.stride_h, g.dil_h, g.pad_t);
  const auto cols = axis_phases(g.W, g.Q, g.S, g.stride_w, g.dil_w, g.pad_l);
  const bool direct_mode = rows.size() == 1 && cols.size() == 1 && g.stride_h == 1 && g.stride_w == 1 &&
                           !rows[0].zero() && !cols[0].zero() && !rows[0].cropped() && !cols[0].cropped();
  std::vector<Phase> phases;
  std::size_t crop_floats = 0, image_floats = 0;
  for (const auto& h : rows)
    for (const auto& w : cols) {
      Phase ph;
      ph.h = h, ph.w = w;
      if (!h.zero() && !w.zero()) {
        if (h.cropped() || w.cropped()) crop_floats = std::max(crop_floats, std::size_t(g.K * h.in_size * w.in_size));
        image_floats = std::max(image_floats, std::size_t(g.C * h.count * w.count));
      }
      phases.push_back(std::move(ph));
    }
  if (direct_mode) crop_floats = image_floats = 0;
  // Images per batch: all in direct mode (no scratch); else the largest divisor of N whose scratch
  // fits kBatchScratchBytes and half the budget.
  int64_t batch = direct_mode ? g.N : 1;
  const double image_bytes = double(crop_floats + image_floats) * sizeof(float);
  const double batch_bytes = std::min(double(kBatchScratchBytes), double(ctx.workspace_limit) / 2);
  for (int64_t b = g.N; !direct_mode && b > 1; --b)
    if (g.N % b == 0 && double(b) * image_bytes <= batch_bytes) {
      batch = b;
      break;
    }
  crop_floats *= std::size_t(batch), image_floats *= std::size_t(batch);  // zero in direct mode
  const std::size_t buffers = align_up(crop_floats * sizeof(float)) + align_up(image_floats * sizeof(float));
  if (buffers > ctx.workspace_limit) {
    out.decline(label, workspace_too_small(buffers, ctx.workspace_limit) + " (scratch of one image's phase)");
    return;
  }
  PlanContext sub_ctx = ctx;
  sub_ctx.direction = Direction::Forward;
  sub_ctx.workspace_limit = ctx.workspace_limit - buffers;
  // One candidate per forward solver of the algorithm (im2col has four): its phases run that
  // solver's best where it applies, else the best of the algorithm's first (general) solver, else
  // any algorithm's. Which solver estimates fastest depends on the thread count; a candidate per
  // solver, whose fallback does not, keeps every name a plan was made with available at every
  // thread count (a plan forced to it stays plannable).
  const char* general = nullptr;
  for (const Solver& solver : all_solvers())
    if (solver.direction == Direction::Forward && solver.algorithm == A) {
      general = solver.name;
      break;
    }
  std::vector<std::string> names;
  std::string why = "applies to no stride phase";
  for (const Solver& solver : all_solvers()) {
    if (solver.direction != Direction::Forward || solver.algorithm != A) continue;
    std::vector<Phase> mine;
    bool used = false;
    for (const Phase& ph : phases) {
      Phase p2;
      p2.h = ph.h, p2.w = ph.w;
      if (!ph.h.zero() && !ph.w.zero()) {
        const Geometry sub(BackwardDataConv::make_sub_problem(g, ph.h, ph.w, batch));
        std::string reason;
        p2.impl = best_forward(sub, sub_ctx, A, &reason, solver.name);
        if (p2.impl) {
          used = true;
        } else {
          if (!reason.empty()) why = "phase " + to_string(sub.problem) + ": " + reason;
          p2.impl = best_forward(sub, sub_ctx, A, nullptr, general);
          if (!p2.impl) p2.impl = best_forward(sub, sub_ctx, Algorithm::Auto, nullptr);
          if (!p2.impl) {
            out.decline(label, "no forward algorithm fits phase " + to_string(sub.problem) + " within workspace_limit=" +
                                   std::to_string(sub_ctx.workspace_limit));
            return;
          }
        }
      }
      mine.push_back(std::move(p2));
    }
    if (!used) continue;
    auto impl = std::make_unique<BackwardDataConv>(g, A, std::move(mine), direct_mode, batch, crop_floats,
                                                   image_floats, ctx.threads);
    if (std::find(names.begin(), names.end(), impl->name()) != names.end()) continue;
    names.push_back(impl->name());
    out.add(std::move(impl));
  }
  if (names.empty()) out.decline(label, why);
}

namespace {

// Kernels no larger than their stride (patchify stems: ViT's 16x16/16, ConvNeXt's 4x4/4), dilation
// 1, one group: every dx pixel comes from at most one tap of one dy pixel, so the stride phases,
// one per tap, are all 1x1 convolutions of the same dy. Planned as 256 separate ones they ran at a
// few percent of peak (each a GEMM with C = 3 rows). Here they are one: a 1x1 forward convolution
// of dy [N, K, P, Q] with W^T [C*R*S, K] gives the patches [C*R*S, P, Q] of one image, then each
// lands on its pixels of dx (a permutation; uncovered pixels get the bias).
class BackwardDataPatches final : public ConvImpl {
 public:
  BackwardDataPatches(const Geometry& g, std::unique_ptr<ConvImpl> sub, TransposeRowsFn transpose)
      : g_(g), sub_(std::move(sub)), transpose_(transpose), rows_(g.C * g.R * g.S),
        patches_bytes_(align_up(std::size_t(rows_ * g.P * g.Q) * sizeof(float))) {}

  Direction direction() const override { return Direction::BackwardData; }
  Algorithm algorithm() const override { return Algorithm::Im2col; }
  std::string name() const override { return "bwd_data_patches(" + sub_->name() + ")"; }
  std::string describe() const override {
    return "one 1x1 convolution of dy into " + std::to_string(rows_) + " patch rows per image, then placed on dx; " +
           sub_->name() + " {" + sub_->describe() + "}";
  }
  std::size_t workspace_bytes() const override { return patches_bytes_ + sub_->workspace_bytes(); }
  void prepare(PlanMode mode) override { sub_->prepare(mode); }
  // The sub-convolution's weights and bias (bias[c] on each of c's patch rows), then the bias.
  std::size_t packed_weights_floats() const override {
    return align_up(sub_->packed_weights_floats() * sizeof(float)) / sizeof(float) + std::size_t(g_.C);
  }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    // W^T: row (c, r, s) holds w[k, c, r, s] over k (16 rows of w at a time through the transpose).
    AlignedBuffer<float> wt(std::size_t(rows_ * g_.K));
    AlignedBuffer<float> row_bias{std::size_t(rows_)};
    for (int64_t k0 = 0; k0 < g_.K; k0 += 16)
      transpose_(w + k0 * rows_, rows_, int(std::min<int64_t>(16, g_.K - k0)), rows_, wt.data() + k0, g_.K);
    for (int64_t j = 0; j < rows_; ++j) row_bias.data()[j] = bias ? bias[j / (g_.R * g_.S)] : 0.0f;
    sub_->pack_weights(wt.data(), row_bias.data(), packed);
    float* b = packed + packed_weights_floats() - g_.C;
    for (int64_t c = 0; c < g_.C; ++c) b[c] = bias ? bias[c] : 0.0f;
  }
  void execute(const float* dy, const float* packed, float* dx, void* workspace, const ThreadPool& pool,
               const float*) const override {
    const Geometry& g = g_;
    float* patches = static_cast<float*>(workspace);
    void* sub_ws = static_cast<char*>(workspace) + patches_bytes_;
    const float* bias = packed + packed_weights_floats() - g.C;
    for (int64_t n = 0; n < g.N; ++n) {
      sub_->execute(dy + n * g.output_image(), packed, patches, sub_ws, pool);
      float* dx_n = dx + n * g.input_image();
      pool.for_each(g.C, [&](int64_t c, int) {
        float* xc = dx_n + c * g.H * g.W;
        std::fill(xc, xc + g.H * g.W, bias[c]);
        for (int64_t r = 0; r < g.R; ++r)
          for (int64_t s = 0; s < g.S; ++s) {
            const float* from = patches + ((c * g.R + r) * g.S + s) * g.P * g.Q;
            // Output pixels whose tap (r, s) lands inside dx (the padding crops the others).
            const Range rows = valid_outputs(g.P, g.stride_h, r - g.pad_t, g.H);
            const Range cols = valid_outputs(g.Q, g.stride_w, s - g.pad_l, g.W);
            for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
              float* to = xc + (oh * g.stride_h - g.pad_t + r) * g.W - g.pad_l + s;
              for (int64_t ow = cols.begin; ow < cols.end; ++ow) to[ow * g.stride_w] = from[oh * g.Q + ow];
            }
          }
      });
    }
  }
  WorkCounts work() const override {
    WorkCounts w = sub_->work() * double(g_.N);
    w.dram_bytes += 8.0 * double(g_.N) * double(g_.input_image());
    return w;
  }

 private:
  Geometry g_;
  std::unique_ptr<ConvImpl> sub_;
  TransposeRowsFn transpose_;
  int64_t rows_;
  std::size_t patches_bytes_;
};

}  // namespace

void propose_backward_data_patches(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const char* label = "bwd_data_patches";
  if (g.R > g.stride_h || g.S > g.stride_w || (g.R > 1 && g.dil_h > 1) || (g.S > 1 && g.dil_w > 1))
    return out.decline(label, "the kernel overlaps itself (wider than its stride, or dilated)");
  if (g.groups > 1) return out.decline(label, "groups > 1");
  // In double first: sizes from users may overflow.
  if (double(g.C) * double(g.R * g.S) * double(g.P * g.Q) * sizeof(float) > double(ctx.workspace_limit))
    return out.decline(label, "workspace limit " + std::to_string(ctx.workspace_limit) +
                                  " bytes is below one image's patches");
  const std::size_t patches = align_up(std::size_t(g.C * g.R * g.S * g.P * g.Q) * sizeof(float));
  if (patches > ctx.workspace_limit)
    return out.decline(label, workspace_too_small(patches, ctx.workspace_limit) + " (one image's patches)");
  ConvProblem p;
  p.batch = 1, p.in_channels = g.K, p.in_height = g.P, p.in_width = g.Q;
  p.out_channels = g.C * g.R * g.S, p.kernel_height = p.kernel_width = 1;
  PlanContext sub_ctx = ctx;
  sub_ctx.direction = Direction::Forward;
  sub_ctx.workspace_limit = ctx.workspace_limit - patches;
  // The "im2col" solver's 1x1 GEMM: one solver, so that the name a plan was made with is there at
  // every thread count (im2col_pixels would win the estimate at some counts and not at others).
  std::unique_ptr<ConvImpl> sub = best_forward(Geometry(p), sub_ctx, Algorithm::Im2col, nullptr, "im2col");
  if (!sub) sub = best_forward(Geometry(p), sub_ctx, Algorithm::Auto, nullptr);
  if (!sub) return out.decline(label, "no forward algorithm fits the 1x1 convolution " + to_string(p));
  out.add(std::make_unique<BackwardDataPatches>(g, std::move(sub), sgemm_kernel(ctx.isa).transpose_rows));
}

template void propose_backward_data<Algorithm::Direct>(const Geometry&, const PlanContext&, Proposals&);
template void propose_backward_data<Algorithm::Im2col>(const Geometry&, const PlanContext&, Proposals&);
template void propose_backward_data<Algorithm::Winograd>(const Geometry&, const PlanContext&, Proposals&);
template void propose_backward_data<Algorithm::FFT>(const Geometry&, const PlanContext&, Proposals&);

}  // namespace fastconv::detail
