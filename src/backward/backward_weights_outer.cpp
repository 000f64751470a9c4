// Backward-weights in the outer-product form: output channels along the vector, no lowering.
//
// dw[k, tap] = sum over pixels of dy[k, pixel] * x[tap at pixel]. The GEMM form lowers col(X), C*R*S
// floats per pixel, and on layers with few input channels and large kernels (the 3-channel stems:
// 7x7/s2, 11x11/s4, 5x5/s3) the lowering costs as much as the products. Here dy is transposed
// instead, K floats per pixel ([pixel][k], whole vectors), and the input copied into zero-padded
// rows split into their column phases, so that each tap reads one float per pixel along a row. A
// register tile of KV vectors of output channels x NT taps then takes, per pixel, KV loads of dy
// and NT broadcasts of x (DotKernels::outer).
//
// The threads split the pixels: the output rows are cut into slices, fixed by the problem. A task
// copies its slice's input rows and transposes its dy rows (both stay in its cache), then runs every
// tile over them, summing into the slice's own copy of dw; the copies are added in slice order at
// the end. Each element's sum: within a slice the images in order, in an image its blocks of rows
// in order, in a block the pixels in order; then the slices in order. Bitwise the same for any
// thread count.
#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "backward/backward_weights.hpp"
#include "backward/dot_kernels.hpp"
#include "core/aligned_buffer.hpp"
#include "core/partition.hpp"
#include "direct/direct_kernels.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {
namespace {

constexpr int64_t kOuterBlockBytes = 24 << 10;  // a tile's part of dy's transposed rows: in L1
constexpr int64_t kOuterSlices = 8;             // slices of the output rows (when there are so many)
constexpr double kOuterSumBytes = 8 << 20;       // the slices' copies of dw, together
constexpr double kOuterGroupBytes = 512 << 10;   // a task's accumulators: in L2
constexpr int64_t kOuterTapRun = 256;            // taps per task of the final sum

// Slices of the output rows: as many as the copies of dw allow (from the problem alone).
int64_t outer_slices(int64_t P, double dw_bytes) {
  return std::clamp<int64_t>(int64_t(kOuterSumBytes / std::max(dw_bytes, 1.0)), 1, std::min(P, kOuterSlices));
}

class BackwardWeightsOuter final : public BackwardWeightsImpl {
 public:
  // A block of output channels: KV vectors from vector `first`, with one kernel variant; its
  // accumulators from `offset` in a slice's copy of dw ([tap][KV*L], taps in dw's order).
  struct ChannelBlock {
    int64_t first;  // vector index: output channels first*L ..
    int variant;
    int64_t offset;
  };
  // NT taps (the last repeated to fill) and the output pixels where all of them read inside the
  // input: the same kernel tap (r, s) of NT channels skips the pixels that read padding; mixed taps
  // (few channels, a tile across kernel taps) run over every pixel.
  struct TapTile {
    int64_t taps[16];
    int64_t p_begin, p_end, q_begin, q_end;
  };
  struct TileRef {
    int64_t block, tile;  // tap_tiles_[blocks_[block].variant][tile]
  };
  // A task's run of tiles (the tiles of all channel blocks in order).
  struct Group {
    int64_t t0, t1;  // its tiles
    int64_t c0, c1;  // the input channels they read
    int64_t k0, k1;  // their output channels (whole vectors)
  };

  BackwardWeightsOuter(const Geometry& g, const DotKernels& kernels, const SgemmKernel& gemm, Isa isa, int threads)
      : g_(g), k_(kernels), transpose_(gemm.transpose_rows), pack_rows_(direct_kernels(isa).pack), isa_(isa),
        threads_(threads), L_(kernels.lanes), taps_(g.Cg * g.R * g.S), kp_(round_up(g.K, int64_t(kernels.lanes))),
        phases_(std::size_t(g.stride_w)) {
    for (int64_t b = 0; b < g.stride_w; ++b) phases_[std::size_t(b)] = int32_t(b);
    for (int v = 0; v < kOuterVariants; ++v) tap_tiles_[v] = plan_tap_tiles(g, kernels.outer[v].nt);
    // Channel blocks: the widest variant that fills.
    const int64_t vectors = kp_ / L_;
    for (int64_t v = 0; v < vectors;) {
      int variant = 0;
      while (vectors - v < kernels.outer[variant].kv) ++variant;  // the last variant has KV = 1
      const OuterVariant& ov = kernels.outer[variant];
      const int64_t tiles = int64_t(tap_tiles_[variant].size());
      blocks_.push_back({v, variant, dw_floats_});
      for (int64_t t = 0; t < tiles; ++t) tiles_.push_back({int64_t(blocks_.size() - 1), t});
      dw_floats_ += taps_ * ov.kv * L_;
      v += ov.kv;
    }
    // The tiles by input channel (then channel block, then tap): a group of them reads few channels.
    std::stable_sort(tiles_.begin(), tiles_.end(), [&](const TileRef& a, const TileRef& b) {
      return first_channel(a) < first_channel(b);
    });
    // Slices of the output rows (sums apart): as many as the copies of dw allow, and none shorter
    // than the kernel's reach (the input rows of a slice overlap the next by that much). Groups of
    // tiles: each task its own; a group's accumulators stay in L2, and with few slices the groups
    // keep the threads busy (a multiple of the threads).
    const double dw_bytes = double(dw_floats_) * sizeof(float);
    const int64_t reach = std::max<int64_t>(1, (g.R - 1) * g.dil_h);
    slice_rows_ = ceil_div(g.P, std::min(outer_slices(g.P, dw_bytes), std::max<int64_t>(1, g.P * g.stride_h / reach)));
    slices_ = ceil_div(g.P, slice_rows_);
    const int64_t tiles = int64_t(tiles_.size());
    int64_t groups = std::max(int64_t(std::ceil(dw_bytes / kOuterGroupBytes)), ceil_div(2 * int64_t(threads), slices_));
    if (groups > 1 && slices_ == 1) groups = round_up(groups, int64_t(threads));
    groups = std::min(tiles, groups);
    group_tiles_ = ceil_div(tiles, groups);
    // The input channels and output channels each group reads: a task copies and transposes only those.
    for (int64_t t0 = 0; t0 < tiles; t0 += group_tiles_) {
      Group gr{t0, std::min(tiles, t0 + group_tiles_), g.C, 0, g.K, 0};
      for (int64_t t = gr.t0; t < gr.t1; ++t) {
        const ChannelBlock& cb = blocks_[std::size_t(tiles_[std::size_t(t)].block)];
        for (int i = 0; i < nt(cb); ++i) {
          const int64_t c = tap_tiles_[cb.variant][std::size_t(tiles_[std::size_t(t)].tile)].taps[i] / (g.R * g.S);
          gr.c0 = std::min(gr.c0, c), gr.c1 = std::max(gr.c1, c + 1);
        }
        gr.k0 = std::min(gr.k0, cb.first * L_), gr.k1 = std::max(gr.k1, (cb.first + kv(cb)) * L_);
      }
      groups_.push_back(gr);
    }
    x_rows_ = (slice_rows_ - 1) * g.stride_h + (g.R - 1) * g.dil_h + 1;
    wph_ = round_up(g.Q + (g.S - 1) * g.dil_w / g.stride_w, int64_t(16));
    row_stride_ = g.stride_w * wph_;
    // Where each tap reads in a slice's input rows (for output pixel (0, 0)).
    for (int64_t tap = 0; tap < taps_; ++tap) {
      const int64_t c = tap / (g.R * g.S), r = tap / g.S % g.R, ds = tap % g.S * g.dil_w;
      tap_offsets_.push_back((c * x_rows_ + r * g.dil_h) * row_stride_ + (ds % g.stride_w) * wph_ + ds / g.stride_w);
    }
    // Output rows per block: a tile's part of dy's transposed rows near kOuterBlockBytes.
    const int64_t pixel_bytes = int64_t(kernels.outer[0].kv * L_) * int64_t(sizeof(float));
    block_rows_ = std::clamp<int64_t>(kOuterBlockBytes / (pixel_bytes * g.Q), 1, slice_rows_);
  }

  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return std::string("bwd_weights_outer__") + isa_name(isa_); }
  std::string describe() const override {
    std::ostringstream s;
    s << "outer products, output channels along the vector: " << k_.outer[0].kv << "x" << k_.outer[0].nt
      << " tiles (vectors x taps) over blocks of " << block_rows_ << " output rows, the input in " << g_.stride_w
      << " column phase" << (g_.stride_w > 1 ? "s" : "") << ", " << slices_ << " slice" << (slices_ > 1 ? "s" : "")
      << " of " << slice_rows_ << " output rows summed apart and added in order, " << groups_.size() << " group"
      << (groups_.size() > 1 ? "s" : "") << " of " << group_tiles_ << " tiles";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return scratch().total(threads_); }

  void execute_backward_weights(const float* x, const float* dy, float* dw, float* db, void* workspace,
                                const ThreadPool& pool) const override {
    float* sums = static_cast<float*>(workspace);  // a copy of dw per slice
    const ThreadScratch slots = scratch();
    const int64_t groups = int64_t(groups_.size());
    pool.for_each(slices_ * groups, [&](int64_t task, int slot) {
      const int64_t slice = task / groups;
      run_slice(slice, groups_[std::size_t(task % groups)], x, dy, sums + slice * dw_floats_,
                slots.of<float>(workspace, slot));
    });
    // The slices' sums in order, then into dw; runs of taps of each channel block split among the
    // threads.
    const int64_t runs = ceil_div(taps_, kOuterTapRun);
    pool.for_each(int64_t(blocks_.size()) * runs, [&](int64_t task, int) {
      const int64_t t0 = task % runs * kOuterTapRun;
      add_slices(blocks_[std::size_t(task / runs)], t0, std::min(taps_, t0 + kOuterTapRun), sums, dw);
    });
    bias_gradient(g_, dy, db, pool);
  }

  WorkCounts work() const override {
    const Geometry& g = g_;
    WorkCounts w;
    // Per image: output channels (whole vectors) x taps (whole tiles) x the pixels each tile runs over.
    double products = 0;
    for (const ChannelBlock& b : blocks_)
      for (const TapTile& t : tap_tiles_[b.variant])
        products += double(kv(b) * L_) * double(nt(b)) * double(std::max<int64_t>(0, t.p_end - t.p_begin)) *
                    double(std::max<int64_t>(0, t.q_end - t.q_begin));
    // Measured on the suite (AVX-512, 2 cores): the tiles run at about 0.87 of the direct rate (a
    // broadcast load per 4 FMAs), and each call of a tile loads and stores its accumulators and
    // sets up its pointers, about 2048 flops' worth.
    const double calls = double(g.N) * double(tiles_.size()) * double(slices_) * double(ceil_div(slice_rows_, block_rows_));
    w.direct_flops = 1.15 * 2.0 * double(g.N) * products + 2048.0 * calls;
    // Per image the slices' input rows (overlapping by the kernel's reach) and dy transposed, a
    // vector at a time (half a lowered element each); the slices' sums added at the end (vector adds).
    double copied = 0;  // per image: the groups' input rows and transposed dy
    for (const Group& gr : groups_)
      copied += double(slices_ * (gr.c1 - gr.c0) * x_rows_ * row_stride_) + double(g.P * g.Q) * double(gr.k1 - gr.k0);
    w.pack_elements = 0.5 * double(g.N) * copied +
                      0.25 * double(slices_) * double(dw_floats_);
    w.dram_bytes = 4.0 * double(g.N) * double(g.input_image() + g.output_image());
    w.parallel_tasks = double(slices_) * double(groups_.size());
    return w;
  }

 private:
  int kv(const ChannelBlock& b) const { return k_.outer[b.variant].kv; }
  int64_t first_channel(const TileRef& t) const {
    return tap_tiles_[blocks_[std::size_t(t.block)].variant][std::size_t(t.tile)].taps[0] / (g_.R * g_.S);
  }
  int nt(const ChannelBlock& b) const { return k_.outer[b.variant].nt; }
  int64_t x_floats() const { return g_.C * x_rows_ * row_stride_; }
  // The slices' copies of dw, then per thread a slice's input rows and its dy transposed.
  ThreadScratch scratch() const {
    return ThreadScratch(align_up(std::size_t(x_floats()) * sizeof(float)) +
                             std::size_t(slice_rows_ * g_.Q * kp_) * sizeof(float),
                         align_up(std::size_t(slices_ * dw_floats_) * sizeof(float)));
  }

  // Tap tiles of NT taps: NT channels at one kernel tap (skipping padding), or runs of NT
  // consecutive taps of dw (channel by channel, across kernel taps: no padding skipped, but full
  // tiles with few channels), whichever has fewer products.
  static std::vector<TapTile> plan_tap_tiles(const Geometry& g, int nt) {
    const int64_t taps = g.C * g.R * g.S, RS = g.R * g.S;
    std::vector<TapTile> by_channels, by_taps;
    double channel_products = 0;
    for (int64_t c0 = 0; c0 < g.C; c0 += nt)  // channels outermost: a group of tiles reads few
      for (int64_t rs = 0; rs < RS; ++rs) {
        const Range rows = valid_outputs(g.P, g.stride_h, rs / g.S * g.dil_h - g.pad_t, g.H);
        const Range cols = valid_outputs(g.Q, g.stride_w, rs % g.S * g.dil_w - g.pad_l, g.W);
        TapTile t;
        for (int i = 0; i < nt; ++i) t.taps[i] = std::min(c0 + i, g.C - 1) * RS + rs;
        t.p_begin = rows.begin, t.p_end = rows.end, t.q_begin = cols.begin, t.q_end = cols.end;
        by_channels.push_back(t);
        channel_products += double(rows.size()) * double(cols.size());
      }
    for (int64_t t0 = 0; t0 < taps; t0 += nt) {
      TapTile t;
      for (int i = 0; i < nt; ++i) t.taps[i] = std::min(t0 + i, taps - 1);
      t.p_begin = 0, t.p_end = g.P, t.q_begin = 0, t.q_end = g.Q;
      by_taps.push_back(t);
    }
    const double tap_products = double(by_taps.size()) * double(g.P) * double(g.Q);
    return channel_products <= tap_products ? by_channels : by_taps;
  }

  // A group's tiles over output rows [p0, p1) of every image into the slice's sums.
  void run_slice(int64_t slice, const Group& gr, const float* x, const float* dy, float* sums, float* scratch) const {
    const Geometry& g = g_;
    const int64_t p0 = slice * slice_rows_, p1 = std::min(g.P, p0 + slice_rows_);
    float* xrows = scratch;
    float* dyt = scratch + align_up(std::size_t(x_floats()) * sizeof(float)) / sizeof(float);
    for (int64_t n = 0; n < g.N; ++n) {
      // The input rows the slice reads, zero-padded, in column phases.
      RowPack pk;
      pk.H = g.H, pk.W = g.W, pk.iy0 = p0 * g.stride_h - g.pad_t, pk.rows = (p1 - p0 - 1) * g.stride_h + (g.R - 1) * g.dil_h + 1;
      pk.ix0 = -g.pad_l, pk.sw = g.stride_w, pk.phase = phases_.data(), pk.phases = g.stride_w, pk.wph = wph_;
      pk.row_stride = row_stride_;
      for (int64_t c = gr.c0; c < gr.c1; ++c) {
        pk.x = x + (n * g.C + c) * g.H * g.W;
        pk.dst = xrows + c * x_rows_ * row_stride_;
        pack_rows_(pk);
      }
      // dy's rows [p0, p1) to dyt[pixel][kp_], zeros past the last channel, 16 channels at a time
      // through the SGEMM kernels' register transpose.
      const int64_t pixels = (p1 - p0) * g.Q;
      const float* dyn = dy + n * g.K * g.P * g.Q + p0 * g.Q;
      if (g.K < gr.k1)  // each pixel's last vector first: the transposes leave its lanes past K zero
        for (int64_t i = 0; i < pixels; ++i) std::fill_n(dyt + (i + 1) * kp_ - L_, L_, 0.0f);
      const int64_t k1 = std::min(g.K, gr.k1);
      for (int64_t k = gr.k0; k < k1; k += 16)
        transpose_(dyn + k * g.P * g.Q, g.P * g.Q, int(std::min<int64_t>(16, k1 - k)), pixels, dyt + k, kp_);
      for (int64_t b0 = p0; b0 < p1; b0 += block_rows_)
        for (int64_t t = gr.t0; t < gr.t1; ++t)
          run_tile(blocks_[std::size_t(tiles_[std::size_t(t)].block)], tiles_[std::size_t(t)].tile, p0, b0,
                   std::min(b0 + block_rows_, p1), xrows, dyt, sums, n > 0 || b0 > p0);
    }
  }

  // One tile over output rows [b0, b1) of the slice from row p0, where its taps read inside the
  // input. Called even when that is no pixel: the first call of a slice's sum zeroes it.
  void run_tile(const ChannelBlock& cb, int64_t tile, int64_t p0, int64_t b0, int64_t b1, const float* xrows,
                const float* dyt, float* sums, bool accumulate) const {
    const Geometry& g = g_;
    const OuterVariant& variant = k_.outer[cb.variant];
    const TapTile& tt = tap_tiles_[cb.variant][std::size_t(tile)];
    const int64_t i0 = std::max(b0, tt.p_begin), i1 = std::min(b1, tt.p_end);
    const int64_t width = int64_t(variant.kv * L_);
    const float* xt[16];
    float* acc[16];
    const float* x0 = xrows + (i0 - p0) * g.stride_h * row_stride_ + tt.q_begin;
    for (int t = 0; t < variant.nt; ++t) {
      xt[t] = x0 + tap_offsets_[std::size_t(tt.taps[t])];
      acc[t] = sums + cb.offset + tt.taps[t] * width;
    }
    OuterTile a;
    a.rows = std::max<int64_t>(0, i1 - i0), a.cols = std::max<int64_t>(0, tt.q_end - tt.q_begin);
    a.dyt = dyt + ((i0 - p0) * g.Q + tt.q_begin) * kp_ + cb.first * L_, a.ldt = kp_, a.dyt_row = g.Q * kp_;
    a.x = xt, a.x_row = g.stride_h * row_stride_, a.acc = acc;
    a.accumulate = accumulate;
    variant.fn(a);
  }

  // Taps [t0, t1) of a channel block: the slices' sums added in slice order into the first slice's
  // copy (a block's copy is [tap][vector lanes]: contiguous runs), then transposed into dw's rows
  // 16 taps at a time through the SGEMM kernels' register transpose.
  void add_slices(const ChannelBlock& cb, int64_t t0, int64_t t1, float* sums, float* dw) const {
    const int64_t width = int64_t(kv(cb) * L_), k0 = cb.first * L_, kn = std::min(width, g_.K - k0);
    float* total = sums + cb.offset + t0 * width;
    const int64_t floats = (t1 - t0) * width;
    for (int64_t s = 1; s < slices_; ++s) {
      const float* part = total + s * dw_floats_;
      for (int64_t i = 0; i < floats; ++i) total[i] += part[i];
    }
    // 16 rows of dw at a time across the run: the rows are C*R*S floats apart, often a multiple of
    // 2 KiB, and 64 of them at once thrash a few sets of L1 (3x slower on 3x3 512ch).
    for (int64_t k = 0; k < kn; k += 16)
      for (int64_t t = t0; t < t1; t += 16)
        transpose_(total + (t - t0) * width + k, width, int(std::min<int64_t>(16, t1 - t)), std::min<int64_t>(16, kn - k),
                   dw + (k0 + k) * taps_ + t, taps_);
  }

  Geometry g_;
  const DotKernels& k_;
  TransposeRowsFn transpose_;
  RowPackFn pack_rows_;
  Isa isa_;
  int threads_, L_;
  int64_t taps_, kp_;             // taps C*R*S; output channels in whole vectors
  std::vector<int32_t> phases_;  // 0 .. stride_w - 1
  int64_t slice_rows_ = 1, slices_ = 1;
  int64_t group_tiles_ = 1;  // tiles per group (the last may have fewer)
  std::vector<Group> groups_;
  int64_t x_rows_ = 0, wph_ = 0, row_stride_ = 0;  // a slice's input rows: their count, phase width, pitch
  std::vector<ChannelBlock> blocks_;
  std::vector<TileRef> tiles_;  // every block's tiles, by input channel
  std::vector<TapTile> tap_tiles_[kOuterVariants];  // per kernel variant (its NT)
  int64_t dw_floats_ = 0;  // a slice's copy of dw, tile by tile
  int64_t block_rows_ = 1;
  std::vector<int64_t> tap_offsets_;
};

}  // namespace

void propose_backward_weights_outer(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  if (g.groups != 1) return out.decline("bwd_weights_outer", "groups (the GEMM and depthwise forms take them)");
  // Sizes from users: the buffers of a huge layer must decline, not overflow (a bound from above).
  const double channels = double(g.K) + 16.0, taps = double(g.C) * double(g.R) * double(g.S) + 16.0;
  const int64_t slices = outer_slices(g.P, channels * taps * sizeof(float));
  const double slice_rows = double(ceil_div(g.P, slices));
  const double rows = slice_rows * double(g.stride_h) + double(g.R - 1) * double(g.dil_h) + 1.0;
  const double row_floats = double(g.stride_w) * (double(g.Q) + double(g.S) * double(g.dil_w) + 16.0);
  const double floats = double(ctx.threads) * (double(g.C) * rows * row_floats + slice_rows * double(g.Q) * channels) +
                        double(slices) * channels * taps;
  if (floats * sizeof(float) > double(ctx.workspace_limit))
    return out.decline("bwd_weights_outer", "workspace limit " + std::to_string(ctx.workspace_limit) +
                                                " bytes is below its buffers (a copy of dw per slice, rows per thread)");
  const DotKernels& kernels = dot_kernels(ctx.isa);
  for (const OuterVariant& v : kernels.outer)
    if (v.nt > 16) return out.decline("bwd_weights_outer", "a tile of more than 16 taps");
  auto impl = std::make_unique<BackwardWeightsOuter>(g, kernels, sgemm_kernel(ctx.isa), ctx.isa, ctx.threads);
  if (impl->workspace_bytes() > ctx.workspace_limit)
    return out.decline("bwd_weights_outer", workspace_too_small(impl->workspace_bytes(), ctx.workspace_limit) +
                                                " (a copy of dw per slice, rows per thread)");
  out.add(std::move(impl));
}

}  // namespace fastconv::detail
