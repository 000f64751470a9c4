// direct_dots: a 1x1 convolution of 1x1 images (a fully connected layer, a squeeze-and-excitation
// block): y[n][k] = bias[k] + sum_c w[k][c] * x[n][c]. Every weight is used once per image, so at
// small batches the layer is a stream of its weights from memory (VGG-16's first classifier layer:
// 411 MB for 0.2 GFLOP). The GEMM paths pad the single pixel column to a tile's width and run at
// the pace of their compute, not of memory (25088->4096: 30 ms against 17 for the stream, measured);
// here rows of weights meet rows of inputs in the dot-product tiles (backward/dot_kernels.hpp), MA
// output channels x NB images each, and each weight is read from memory once whatever the batch.
//
// Order of the sums: the tiles' own (lanes, then a fixed reduction) over chunks of kChunk floats of
// c, each chunk's sum added in order, then the bias: fixed by the layer, so the bits do not depend on
// the threads.
#include "direct/direct_dots.hpp"

#include <algorithm>
#include <sstream>

#include "backward/dot_kernels.hpp"
#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"

namespace fastconv::detail {
namespace {

// Floats of c per tile call: MA rows of weights (32 KiB with 8 rows) stay in L1 while the tile
// meets each group of images.
constexpr int64_t kChunk = 1024;
static_assert(kChunk % kDotStep == 0, "chunks of whole dot steps");
constexpr int kMaxTile = 16;  // rows of a tile (MA, NB), for its pointer arrays

class DirectDots final : public ConvImpl {
 public:
  DirectDots(const Geometry& g, const DotKernels& dot, Isa isa, int threads)
      : g_(g), dot_(dot), isa_(isa), threads_(threads), ma_(dot.ma), nb_(g.N == 1 ? 1 : dot.nb),
        c_main_(g.C / kDotStep * kDotStep), c_pad_(round_up(g.C, kDotStep)), k_blocks_(ceil_div(g.K, int64_t(ma_))),
        n_pad_(round_up(g.N, int64_t(nb_))), tasks_(balanced_tasks(k_blocks_, threads, kBalancedTasksPerThread)) {}

  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return std::string("direct_dots__") + isa_name(isa_); }
  std::string describe() const override {
    std::ostringstream s;
    s << "dot products of weight rows and input rows (1x1 on 1x1 images), tile " << ma_ << " channels x " << nb_
      << " images, " << kChunk << " input channels per call, the weights streamed once, " << tasks_ << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return scratch().total(threads_); }
  std::size_t packed_weights_floats() const override {
    const int64_t rows = checked_mul(k_blocks_, int64_t(ma_), "dots packed weights");
    return std::size_t(checked_add(checked_mul(rows, c_pad_, "dots packed weights"), g_.K, "dots packed weights"));
  }
  // Rows of c_pad_ floats (zeros past C) for K rounded up to MA channels (zero rows), then the bias.
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    const int64_t rows = k_blocks_ * ma_;
    for (int64_t k = 0; k < rows; ++k) {
      float* row = packed + k * c_pad_;
      if (k < g_.K) std::copy(w + k * g_.C, w + (k + 1) * g_.C, row);
      std::fill(row + (k < g_.K ? g_.C : 0), row + c_pad_, 0.0f);
    }
    float* b = packed + rows * c_pad_;
    for (int64_t k = 0; k < g_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    const int64_t C = g.C, K = g.K, N = g.N, tail = C - c_main_;
    const float* bias = packed + k_blocks_ * ma_ * c_pad_;
    const DotTileFn tile = nb_ == 1 ? dot_.tile_x1 : dot_.tile;
    const ThreadScratch scratch_of = scratch();
    pool.for_each(tasks_, [&](int64_t task, int slot) {
      // Scratch: the sums [MA][n_pad], the same transposed to [n_pad][MA], the inputs' tails padded.
      float* sums = scratch_of.of<float>(workspace, slot);
      float* stage = sums + ma_ * n_pad_;
      float* tails = stage + ma_ * n_pad_;
      if (tail > 0)
        for (int64_t n = 0; n < n_pad_; ++n) {
          float* t = tails + n * kDotStep;
          std::fill(t, t + kDotStep, 0.0f);
          if (n < N) std::copy(x + n * C + c_main_, x + (n + 1) * C, t);
        }
      const float* a[kMaxTile];
      const float* b[kMaxTile];
      const Range blocks = run_of(k_blocks_, tasks_, task);
      for (int64_t kb = blocks.begin; kb < blocks.end; ++kb) {
        const int64_t k0 = kb * ma_;
        const float* wk = packed + k0 * c_pad_;
        for (int64_t c0 = 0; c0 < c_main_; c0 += kChunk) {
          const int64_t len = std::min(kChunk, c_main_ - c0);
          for (int i = 0; i < ma_; ++i) a[i] = wk + i * c_pad_ + c0;
          for (int64_t n0 = 0; n0 < N; n0 += nb_) {
            // A last group short of NB images repeats the last image (its sums are not used).
            for (int j = 0; j < nb_; ++j) b[j] = x + std::min(n0 + j, N - 1) * C + c0;
            tile(len, a, b, sums + n0, n_pad_, c0 > 0);
          }
        }
        if (tail > 0) {
          for (int i = 0; i < ma_; ++i) a[i] = wk + i * c_pad_ + c_main_;
          for (int64_t n0 = 0; n0 < N; n0 += nb_) {
            for (int j = 0; j < nb_; ++j) b[j] = tails + (n0 + j) * kDotStep;
            tile(kDotStep, a, b, sums + n0, n_pad_, c_main_ > 0);
          }
        }
        const int mk = int(std::min<int64_t>(ma_, K - k0));
        for (int64_t n = 0; n < N; ++n)
          for (int i = 0; i < mk; ++i) stage[n * ma_ + i] = sums[i * n_pad_ + n] + bias[k0 + i];
        if (epilogue_.active()) {
          epilogue_.apply_from(stage, ma_, y + k0, residual ? residual + k0 : nullptr, K, N, mk);
        } else {
          for (int64_t n = 0; n < N; ++n) std::copy(stage + n * ma_, stage + n * ma_ + mk, y + n * K + k0);
        }
      }
    });
  }
  WorkCounts work() const override {
    WorkCounts w;
    // What the tiles compute: K and the images rounded up to the tile, C to whole dot steps.
    w.direct_flops = 2.0 * double(k_blocks_ * ma_) * double(n_pad_) * double(c_pad_);
    w.dram_bytes = 4.0 * (double(g_.K) * double(c_pad_) + double(g_.N) * double(g_.C + g_.K));
    w.parallel_tasks = double(tasks_);
    return w;
  }
  static bool applies(const Geometry& g) {
    // (A 1x1 output follows: no padding, a 1x1 kernel on a 1x1 image, whatever the stride.)
    return g.H == 1 && g.W == 1 && g.R == 1 && g.S == 1 && g.groups == 1 && g.pad_t == 0 && g.pad_b == 0 &&
           g.pad_l == 0 && g.pad_r == 0;
  }
  ThreadScratch scratch() const {
    const int64_t floats = checked_add(checked_mul(2 * ma_, n_pad_, "dots scratch"),
                                       checked_mul(n_pad_, kDotStep, "dots scratch"), "dots scratch");
    return ThreadScratch(std::size_t(floats) * sizeof(float));
  }

 private:
  Geometry g_;
  const DotKernels& dot_;
  Isa isa_;
  int threads_;
  int ma_, nb_;
  int64_t c_main_, c_pad_, k_blocks_, n_pad_, tasks_;
};

}  // namespace

void propose_direct_dots(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  if (!DirectDots::applies(g)) return;  // the general direct kernel covers the rest
  const DotKernels& dot = dot_kernels(ctx.isa);
  if (dot.ma > kMaxTile || dot.nb > kMaxTile) throw Error("direct_dots: a dot tile wider than its pointer arrays");
  auto impl = std::make_unique<DirectDots>(g, dot, ctx.isa, ctx.threads);
  if (impl->workspace_bytes() > ctx.workspace_limit) {
    out.decline("direct_dots", workspace_too_small(impl->workspace_bytes(), ctx.workspace_limit));
    return;
  }
  out.add(std::move(impl));
}

}  // namespace fastconv::detail
