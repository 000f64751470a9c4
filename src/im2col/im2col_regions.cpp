// Im2col over regions: the GEMM of im2col without the taps that read padding. The output splits into
// rectangles (a band of rows x a band of columns) inside which every output reads the same taps;
// each region multiplies only those taps' weights by their lowered rows. Where the padding is wide
// next to the image (DeepLab's ASPP: a 3x3 kernel dilated 12 on a 33x33 image, pad 12), over 40% of
// im2col's multiply-adds meet zeros; here none does.
//
// Weights are packed once with the depth in tap-major order (tap, then channel): the taps of a
// region are a few contiguous depth ranges of the same A panels (one per kernel row, one in all
// when the region reads every column tap). The gather copies input rows without a bounds check
// (every tap of a region reads the input). A region's outputs are not contiguous in y, so tiles are
// computed into a per-thread staging block, and its rows are written out with the bias and the
// fused epilogue. Depth chunks (at most KC, tap-aligned) are fixed by the problem: every budget and
// thread count gives the same bits.
//
// Non-finite values: a NaN or Inf in the input reaches exactly the outputs whose receptive field
// holds it; a non-finite weight reaches only the outputs whose tap reads the input (the padding is
// never multiplied).
#include "im2col/im2col_regions.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "core/prefetch.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {
namespace {

// Pixels per block when memory allows (as im2col: a KC x 512 block streams through L2).
constexpr int64_t kPreferredPixels = 512;
// Proposed only where the regions skip this share of the taps or more: below it, the per-region
// tile edges and the staging copy cost about what the skipped taps save.
constexpr double kMinSkippedShare = 0.1;

// Consecutive outputs along one axis that read the same taps [tap_begin, tap_end).
struct Band {
  int64_t begin, end;
  int64_t tap_begin, tap_end;
};

// The bands of an axis: output o reads tap t when 0 <= o*stride + t*dil - pad < in. Tap t is read
// by the outputs [begin_t, end_t) (valid_outputs), and both ends fall as t grows: o reads the taps
// [first t with begin_t <= o, first t with end_t <= o). Bands start where some begin_t or end_t lies;
// O(taps log taps), whatever the output's size.
std::vector<Band> axis_bands(int64_t out, int64_t stride, int64_t taps, int64_t dil, int64_t pad, int64_t in) {
  std::vector<Range> reads(static_cast<std::size_t>(taps));
  std::vector<int64_t> starts = {0};
  for (int64_t t = 0; t < taps; ++t) {
    reads[std::size_t(t)] = valid_outputs(out, stride, t * dil - pad, in);
    starts.push_back(reads[std::size_t(t)].begin);
    starts.push_back(reads[std::size_t(t)].end);
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  while (!starts.empty() && starts.back() >= out) starts.pop_back();
  std::vector<Band> bands;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const int64_t o = starts[i], end = i + 1 < starts.size() ? starts[i + 1] : out;
    const auto first = [&](auto below) {  // the first tap t with below(t), all later taps too
      int64_t lo = 0, hi = taps;
      while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (below(mid)) hi = mid; else lo = mid + 1;
      }
      return lo;
    };
    int64_t t0 = first([&](int64_t t) { return reads[std::size_t(t)].begin <= o; });
    int64_t t1 = first([&](int64_t t) { return reads[std::size_t(t)].end <= o; });
    if (t0 >= t1) t0 = t1 = 0;  // reads nothing: the bias alone
    if (!bands.empty() && bands.back().tap_begin == t0 && bands.back().tap_end == t1)
      bands.back().end = end;
    else
      bands.push_back({o, end, t0, t1});
  }
  return bands;
}

struct Region {
  int64_t p0, p1, q0, q1;  // output rows and columns
  int64_t r0, r1, s0, s1;  // the taps every output of it reads
  int64_t width() const { return q1 - q0; }
  int64_t pixels() const { return (p1 - p0) * (q1 - q0); }
  int64_t taps() const { return (r1 - r0) * (s1 - s0); }
};

// A depth range of the tap-major packed weights, [k0, k0 + kc): taps [tap0, tap1) by channels
// [c0, c1) (whole taps, or one tap's channels cut at KC).
struct Chunk {
  int64_t k0, kc;
  int64_t tap0, tap1, c0, c1;
};

// n contiguous floats, n <= NR: in 16-byte moves, the last one overlapping the one before (the
// runs are 1 to 32 floats; a loop's scalar tail cost more than the copy).
inline void copy_run(float* out, const float* src, int64_t n) {
  if (n < 4) {
    for (int64_t e = 0; e < n; ++e) out[e] = src[e];
    return;
  }
  int64_t e = 0;
  for (; e + 4 <= n; e += 4) std::memcpy(out + e, src + e, 4 * sizeof(float));
  if (e < n) std::memcpy(out + n - 4, src + n - 4, 4 * sizeof(float));
}

// A block of a region's pixels (row-major within the region), one task's columns.
struct Block {
  int64_t region, begin, end;
};

// Every region's pixels in blocks of at most `cap_panels` NR panels, spread evenly within a region;
// block i found by search (a huge image has too many blocks to list).
class BlockTable {
 public:
  BlockTable() = default;
  BlockTable(const std::vector<Region>& regions, int64_t cap_panels, int nr) : nr_(nr) {
    int64_t first = 0;
    for (const Region& r : regions) {
      const int64_t panels = ceil_div(r.pixels(), nr), parts = ceil_div(panels, cap_panels);
      first_.push_back(first);
      parts_.push_back(parts);
      panels_.push_back(panels);
      pixels_.push_back(r.pixels());
      widest_ = std::max(widest_, ceil_div(panels, parts) * nr);
      first = checked_add(first, parts, "im2col regions blocks");
    }
    count_ = first;
  }
  int64_t count() const { return count_; }
  int64_t widest() const { return widest_; }  // pixels, whole panels
  Block operator()(int64_t i) const {
    const std::size_t r = std::size_t(std::upper_bound(first_.begin(), first_.end(), i) - first_.begin() - 1);
    const Range run = run_of(panels_[r], parts_[r], i - first_[r]);
    return {int64_t(r), run.begin * nr_, std::min(run.end * nr_, pixels_[r])};
  }

 private:
  int nr_ = 1;
  int64_t count_ = 0, widest_ = 0;
  std::vector<int64_t> first_, parts_, panels_, pixels_;
};

// A run of a block's pixels within one output row and one NR panel: its first pixel in the block
// (the panel and column it packs to) and where it starts in an input channel for tap (0, 0).
struct Segment {
  int64_t panel, column, src, len;
};

struct Blocking {
  int64_t pixels;    // the widest block (whole NR panels)
  int64_t kc;        // the deepest chunk
  int64_t m_chunk;   // output channels per task (whole MR panels)
  int64_t m_chunks;
};

class Im2colRegionsConv final : public ConvImpl {
 public:
  Im2colRegionsConv(const Geometry& g, const SgemmKernel& kernel, int threads, std::vector<Region> regions,
                    BlockTable blocks, const Blocking& b)
      : g_(g), kernel_(kernel), threads_(threads), regions_(std::move(regions)), blocks_(std::move(blocks)), b_(b),
        kdim_(g.Cg * g.R * g.S) {
    for (int64_t t = 0; t < g.R * g.S; ++t) tap_offset_.push_back((t / g.S) * g.dil_h * g.W + (t % g.S) * g.dil_w);
    chunks_.resize(regions_.size());
    for (std::size_t i = 0; i < regions_.size(); ++i) chunks_[i] = chunks_of(regions_[i]);
  }

  Algorithm algorithm() const override { return Algorithm::Im2col; }
  std::string name() const override {
    return "im2col_regions_gemm_" + std::string(kernel_.name).substr(std::string("sgemm_ukernel_").size());
  }
  std::string describe() const override {
    std::ostringstream s;
    s << regions_.size() << " regions of equal taps (" << 100.0 * (1.0 - useful_share()) << "% of the taps skipped), "
      << kernel_.name << " (MR " << kernel_.blocking.mr << ", NR " << kernel_.blocking.nr << ", MC " << kernel_.blocking.mc
      << ", KC " << b_.kc << "), " << b_.pixels << " pixels x " << b_.m_chunk << " channels per task, " << grid().tasks()
      << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return scratch().total(threads_); }
  std::size_t packed_weights_floats() const override {
    const int64_t per_group = checked_mul(round_up(g_.Kg, kernel_.blocking.mr), kdim_, "im2col regions packed weights");
    return std::size_t(checked_add(checked_mul(g_.groups, per_group, "im2col regions packed weights"), g_.K,
                                   "im2col regions packed weights"));
  }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    // [Kg][Cg][R][S] -> [Kg][R][S][Cg], then into A panels.
    const int64_t taps = g_.R * g_.S;
    std::vector<float> tap_major(std::size_t(g_.Kg * kdim_));
    for (int64_t grp = 0; grp < g_.groups; ++grp) {
      const float* wg = w + grp * g_.Kg * kdim_;
      for (int64_t k = 0; k < g_.Kg; ++k)
        for (int64_t c = 0; c < g_.Cg; ++c)
          for (int64_t t = 0; t < taps; ++t) tap_major[std::size_t((k * taps + t) * g_.Cg + c)] = wg[(k * g_.Cg + c) * taps + t];
      pack_a_panels(kernel_.transpose_rows, tap_major.data(), kdim_, g_.Kg, kdim_, kernel_.blocking.mr,
                    packed + grp * panels_per_group());
    }
    float* b = packed + g_.groups * panels_per_group();
    for (int64_t k = 0; k < g_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    const GemmBlocking& bl = kernel_.blocking;
    const int64_t PQ = g.P * g.Q;
    const float* bias = packed + g.groups * panels_per_group();
    const TaskGrid<4> tasks = grid();
    const ThreadScratch scratch_of = scratch();
    pool.for_each(tasks.tasks(), [&](int64_t task, int slot) {
      const auto [n, grp, blk, mc] = tasks(task);
      const Block block = blocks_(blk);
      const Region& reg = regions_[std::size_t(block.region)];
      const int64_t ncols = block.end - block.begin;
      const int64_t m0 = mc * b_.m_chunk, mrows = std::min(b_.m_chunk, g.Kg - m0);
      const float* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
      const float* a = packed + grp * panels_per_group() + (m0 / bl.mr) * kdim_ * bl.mr;
      const float* bias_g = bias + grp * g.Kg + m0;
      float* b_pack = scratch_of.of<float>(workspace, slot);
      float* staged = at_offset<float>(b_pack, pack_bytes());
      Segment* segs = at_offset<Segment>(staged, staged_bytes());
      const int64_t nsegs = segments_of(reg, block.begin, ncols, segs);
      const std::vector<Chunk>& chunks = chunks_[std::size_t(block.region)];
      if (chunks.empty()) {  // every tap reads padding: the bias alone
        for (int64_t m = 0; m < mrows; ++m) std::fill_n(staged + m * ncols, ncols, bias_g[m]);
      }
      for (std::size_t ci = 0; ci < chunks.size(); ++ci) {
        const Chunk& ch = chunks[ci];
        gather(segs, nsegs, xg, ch, b_pack);
        const bool last = ci + 1 == chunks.size();
        for (int64_t i0 = 0; i0 < mrows; i0 += bl.mc) {
          const int64_t rows = std::min(bl.mc, mrows - i0);
          gemm_macro_kernel(kernel_, rows, ncols, ch.kc, a + (i0 / bl.mr) * kdim_ * bl.mr + ch.k0 * bl.mr,
                            kdim_ * bl.mr, b_pack, ch.kc * bl.nr, staged + i0 * ncols, ncols, ci > 0,
                            last ? bias_g + i0 : nullptr, nullptr);
        }
      }
      // Out to y, row segment by row segment, through the epilogue (a residual that is y is read
      // before it is written).
      const int64_t w = reg.width();
      float* yg = y + (n * g.K + grp * g.Kg + m0) * PQ;
      const float* rg = residual ? residual + (yg - y) : nullptr;
      for (int64_t i = block.begin; i < block.end;) {
        const int64_t p = reg.p0 + i / w, q = reg.q0 + i % w;
        const int64_t len = std::min(w - i % w, block.end - i);
        const int64_t at = p * g.Q + q;
        const float* s = staged + (i - block.begin);
        if (epilogue_.active())
          epilogue_.apply_from(s, ncols, yg + at, rg ? rg + at : nullptr, PQ, mrows, len);
        else
          for (int64_t m = 0; m < mrows; ++m) {
            // Region rows are short (a dilated layer's are 9-12 floats), where a memcpy call costs
            // more than the copy.
            if (len <= kernel_.blocking.nr)
              copy_run(yg + m * PQ + at, s + m * ncols, len);
            else
              std::memcpy(yg + m * PQ + at, s + m * ncols, std::size_t(len) * sizeof(float));
          }
        i += len;
      }
    });
  }
  WorkCounts work() const override {
    const GemmBlocking& bl = kernel_.blocking;
    double tile_work = 0, lowered = 0;
    for (const Region& reg : regions_) {
      // Blocks are whole panels but the region's last: only its tail runs a part-width tile.
      const int64_t cols = reg.pixels();
      const double padded = double(gemm_columns(cols, kernel_));
      const double kd = double(reg.taps() * g_.Cg);
      tile_work += padded * kd, lowered += double(cols) * kd;
    }
    const double images = double(g_.N * g_.groups);
    WorkCounts w;
    w.gemm_flops = 2.0 * images * double(round_up(g_.Kg, bl.mr)) * tile_work;
    w.gemm_m = double(g_.Kg), w.gemm_n = double(g_.P * g_.Q) / double(blocks_.count()),
    w.gemm_k = lowered / double(g_.P * g_.Q);
    // Row copies without bounds checks (a flat copy each), then the staged outputs written out.
    w.pack_elements = images * double(b_.m_chunks) * lowered + double(g_.N) * double(g_.output_image());
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) + double(g_.K * kdim_));
    w.parallel_tasks = double(grid().tasks());
    return w;
  }

 private:
  // The region's taps as depth chunks of the tap-major weights: per kernel row its column taps
  // (all kernel rows at once when the region reads every column tap), cut at KC on tap boundaries.
  std::vector<Chunk> chunks_of(const Region& reg) const {
    std::vector<Chunk> out;
    if (reg.taps() == 0) return out;
    const bool whole_rows = reg.s0 == 0 && reg.s1 == g_.S;
    auto add_run = [&](int64_t tap0, int64_t taps) {
      const int64_t per_chunk = std::max<int64_t>(1, b_.kc / g_.Cg);  // whole taps, unless one is deeper than KC
      for (int64_t t = 0; t < taps; t += per_chunk) {
        const int64_t nt = std::min(per_chunk, taps - t);
        const int64_t k_begin = (tap0 + t) * g_.Cg, k_end = k_begin + nt * g_.Cg;
        for (int64_t k = k_begin; k < k_end; k += b_.kc) {
          const int64_t kc = std::min(b_.kc, k_end - k);
          if (nt > 1)
            out.push_back({k, kc, tap0 + t, tap0 + t + nt, 0, g_.Cg});
          else
            out.push_back({k, kc, tap0 + t, tap0 + t + 1, k - k_begin, k - k_begin + kc});
        }
      }
    };
    if (whole_rows)
      add_run(reg.r0 * g_.S, (reg.r1 - reg.r0) * g_.S);
    else
      for (int64_t r = reg.r0; r < reg.r1; ++r) add_run(r * g_.S + reg.s0, reg.s1 - reg.s0);
    return out;
  }

  // The block's segments, once per block (the same for every depth row); returns their count.
  int64_t segments_of(const Region& reg, int64_t begin, int64_t ncols, Segment* out) const {
    const Geometry& g = g_;
    const int nr = kernel_.blocking.nr;
    const int64_t w = reg.width();
    int64_t count = 0;
    for (int64_t j = 0; j < ncols;) {
      const int64_t i = begin + j, p = reg.p0 + i / w, q = reg.q0 + i % w;
      const int64_t len = std::min({w - i % w, ncols - j, nr - j % nr});
      out[count++] = {j / nr, j % nr, (p * g.stride_h - g.pad_t) * g.W + q * g.stride_w - g.pad_l, len};
      j += len;
    }
    return count;
  }

  // Packs depth rows [k0, k0 + kc) of the lowered matrix for the block's pixels into panels of
  // kc x NR (the last panel's columns past ncols zeroed). Every read is inside the input. Panel by
  // panel (one panel, kc x NR, stays in L1), and within one channel by channel, so that the taps of
  // a channel read the lines the previous tap brought in (row by row in depth order, each read met
  // a new channel plane, and the gather ran at L2 latency).
  void gather(const Segment* segs, int64_t nsegs, const float* xg, const Chunk& ch, float* dst) const {
    const Geometry& g = g_;
    const int nr = kernel_.blocking.nr;
    const int64_t panel_stride = ch.kc * nr, sw = g.stride_w, plane = g.H * g.W, channels = ch.c1 - ch.c0;
    for (int64_t t0 = 0; t0 < nsegs;) {
      int64_t t1 = t0 + 1;
      while (t1 < nsegs && segs[t1].panel == segs[t0].panel) ++t1;
      float* panel = dst + segs[t0].panel * panel_stride;
      const int64_t filled = segs[t1 - 1].column + segs[t1 - 1].len;
      for (int64_t c = ch.c0; c < ch.c1; ++c) {
        // The reads are short runs of many planes, too scattered for the hardware prefetchers: the
        // runs of the channel after next are requested now.
        if (c + 2 < ch.c1)
          for (int64_t tap = ch.tap0; tap < ch.tap1; ++tap)
            for (int64_t t = t0; t < t1; ++t) {
              const float* next = xg + (c + 2) * plane + tap_offset_[std::size_t(tap)] + segs[t].src;
              prefetch_l1(next);
              prefetch_l1(next + segs[t].len - 1);
            }
        for (int64_t tap = ch.tap0; tap < ch.tap1; ++tap) {
          const float* base = xg + c * plane + tap_offset_[std::size_t(tap)];
          float* row = panel + ((tap - ch.tap0) * channels + (c - ch.c0)) * nr;
          for (int64_t t = t0; t < t1; ++t) {
            const float* src = base + segs[t].src;
            float* out = row + segs[t].column;
            const int64_t len = segs[t].len;
            if (sw == 1)
              copy_run(out, src, len);
            else
              for (int64_t e = 0; e < len; ++e) out[e] = src[e * sw];
          }
          if (filled < nr) std::fill(row + filled, row + nr, 0.0f);
        }
      }
      t0 = t1;
    }
  }

  double useful_share() const {
    double taps = 0;
    for (const Region& reg : regions_) taps += double(reg.pixels() * reg.taps());
    return taps / (double(g_.P * g_.Q) * double(g_.R * g_.S));
  }
  int64_t panels_per_group() const { return packed_a_floats(g_.Kg, kdim_, kernel_.blocking.mr); }
  std::size_t pack_bytes() const {
    return align_up(std::size_t(round_up(b_.pixels, kernel_.blocking.nr) * b_.kc) * sizeof(float));
  }
  std::size_t staged_bytes() const { return align_up(std::size_t(b_.m_chunk * b_.pixels) * sizeof(float)); }
  // A thread's scratch: its packed block, its staged outputs, its block's segments.
  ThreadScratch scratch() const {
    return ThreadScratch(pack_bytes() + staged_bytes() + align_up(std::size_t(b_.pixels) * sizeof(Segment)));
  }
  // Tasks: (image, group, pixel block, channel block).
  TaskGrid<4> grid() const { return task_grid(g_.N, g_.groups, blocks_.count(), b_.m_chunks); }

  Geometry g_;
  const SgemmKernel& kernel_;
  int threads_;
  std::vector<Region> regions_;
  BlockTable blocks_;
  Blocking b_;
  int64_t kdim_;
  std::vector<std::vector<Chunk>> chunks_;
  std::vector<int64_t> tap_offset_;  // of tap (r, s) in an input plane: r*dil_h*W + s*dil_w
};

}  // namespace

void propose_im2col_regions(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const char* name = "im2col_regions";
  if (g.R > 1024 || g.S > 1024) {  // bands are found tap by tap
    out.decline(name, "a kernel over 1024 taps along an axis");
    return;
  }
  const std::vector<Band> rows = axis_bands(g.P, g.stride_h, g.R, g.dil_h, g.pad_t, g.H);
  const std::vector<Band> cols = axis_bands(g.Q, g.stride_w, g.S, g.dil_w, g.pad_l, g.W);
  // Past this many regions their tiles are mostly edges (a long kernel on a small image).
  if (rows.size() * cols.size() > 1024) {
    out.decline(name, std::to_string(rows.size() * cols.size()) + " regions of equal taps (at most 1024)");
    return;
  }
  std::vector<Region> regions;
  double useful = 0;
  for (const Band& rb : rows)
    for (const Band& cb : cols) {
      regions.push_back({rb.begin, rb.end, cb.begin, cb.end, rb.tap_begin, rb.tap_end, cb.tap_begin, cb.tap_end});
      useful += double(regions.back().pixels() * regions.back().taps());
    }
  const double skipped = 1.0 - useful / (double(g.P * g.Q) * double(g.R * g.S));
  if (skipped < kMinSkippedShare) {
    out.decline(name, "fewer than 10% of the taps read padding: im2col_gemm does the same work");
    return;
  }
  if (g.Kg * g.Cg == 1) {
    out.decline(name, "one channel per group: a GEMM of one row");
    return;
  }
  const SgemmKernel& kernel = sgemm_kernel(ctx.isa);
  const GemmBlocking& bl = kernel.blocking;
  // Each region lists its depth chunks (at most one per tap and KC channels).
  const double chunks = double(g.R * g.S) * double(ceil_div(g.Cg, bl.kc)) * double(rows.size() * cols.size());
  if (chunks > 1e6) {
    out.decline(name, "over a million depth chunks in all regions");
    return;
  }
  Blocking b;
  b.kc = std::min(bl.kc, g.Cg * g.R * g.S);
  b.m_chunks = 1;
  b.m_chunk = round_up(g.Kg, bl.mr);
  int64_t max_region = 0;
  for (const Region& r : regions) max_region = std::max(max_region, r.pixels());
  // In double: a channel count in the billions must decline, not overflow.
  auto bytes_for = [&](int64_t cap_panels, int64_t m_chunk) {
    const double pixels = double(std::min(cap_panels * bl.nr, round_up(max_region, bl.nr)));
    auto aligned = [](double bytes) { return std::ceil(bytes / double(kAlignment)) * double(kAlignment); };
    // As scratch(): the packed block, the staged outputs, the segments.
    const double per_thread = aligned(pixels * double(b.kc) * sizeof(float)) +
                              aligned(double(m_chunk) * pixels * sizeof(float)) + aligned(pixels * sizeof(Segment));
    return per_thread * double(ctx.threads);
  };
  const double limit = double(ctx.workspace_limit);
  int64_t cap = std::max<int64_t>(1, std::min(kPreferredPixels / bl.nr, ceil_div(max_region, bl.nr)));
  while (cap > 1 && bytes_for(cap, b.m_chunk) > limit) --cap;
  // Under a tight budget, fewer channels per task (each packs its pixels again).
  if (bytes_for(cap, b.m_chunk) > limit) {  // the most MR panels that fit, by bisection
    int64_t lo = 1, hi = b.m_chunk / bl.mr;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (bytes_for(cap, mid * bl.mr) <= limit) lo = mid; else hi = mid - 1;
    }
    b.m_chunk = lo * bl.mr;
  }
  if (bytes_for(cap, b.m_chunk) > limit) {
    out.decline(name, workspace_too_small(std::size_t(bytes_for(1, bl.mr)), ctx.workspace_limit));
    return;
  }
  BlockTable blocks(regions, cap, bl.nr);
  b.m_chunks = ceil_div(g.Kg, b.m_chunk);
  // Few tasks (one image, few regions): more, smaller pixel blocks until the threads share them evenly.
  const int64_t images = g.N * g.groups;
  while (leaves_threads_idle(images * blocks.count() * b.m_chunks, ctx.threads) && cap > 1)
    blocks = BlockTable(regions, --cap, bl.nr);
  b.pixels = blocks.widest();
  out.add(std::make_unique<Im2colRegionsConv>(g, kernel, ctx.threads, std::move(regions), std::move(blocks), b));
}

}  // namespace fastconv::detail
