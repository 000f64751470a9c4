// Winograd F(m x m, 3x3): per image and group, the output is cut into m x m tiles; each task takes a
// group of tiles, transforms their input (V = B^T d B, straight into the GEMM's packed-B panels),
// runs the (m+2)^2 GEMMs M_xi [Kg x T] = U_xi [Kg x Cg] * V_xi [Cg x T] on the SGEMM macro-kernel
// with the filter transforms U packed once as A panels, and transforms M back (y = A^T M A + bias).
// Tile groups are sized so that a group's V and M stay in L2 within the workspace budget (with
// hundreds of channels even one NR panel of tiles is larger: the products are then long enough to
// be fed from L3). The channel reduction is never split and its depth blocking (KC) is fixed, so
// the bits depend neither on the blocking nor on the thread count.
#include "winograd/winograd_conv.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "core/phase_stats.hpp"
#include "gemm/macro_kernel.hpp"
#include "winograd/dilated_phases.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "winograd/winograd_transforms.hpp"

namespace fastconv::detail {

// Floats between the transform elements of V or M: whole cache lines (64-byte aligned panels), an
// odd number of them, so that the (m+2)^2 elements of one tile, written or read together, fall in
// different L1 sets; a multiple of 4 KiB would put them all in one set and thrash it.
int64_t winograd_xi_stride(int64_t floats) {
  const int64_t lines = ceil_div(floats, 16);
  return 16 * (lines % 2 == 0 ? lines + 1 : lines);
}

WinogradGemmShape winograd_gemm_shape(int64_t tiles, int64_t per_group, int64_t Kg, int64_t split_rows,
                                      int64_t chunk_rows, const SgemmKernel& kernel) {
  const int64_t rest = tiles % per_group;
  const double columns = double(tiles / per_group) * double(gemm_columns(per_group, kernel)) +
                         (rest ? double(gemm_columns(rest, kernel)) : 0.0);
  auto split = [&](int64_t n) { return padded_blocks(n, chunk_rows, kernel.blocking.mr); };
  return {double(Kg / split_rows) * split(split_rows) + split(Kg % split_rows), columns};
}

namespace {

// Floats of the transforms per tile and channel (input) or per tile and output channel (output,
// bias included), counting an FMA as two: the cost model's transform_flops.
double input_transform_flops(int m) { return m == 2 ? 32 : 12 * 22; }
double output_transform_flops(int m) { return m == 2 ? 28 : 10 * 13 + 16; }
// Scalar work of the fixed costs, in the cost model's scalar_flops (plain-loop operations).
constexpr double kCallOverheadFlops = 64;
constexpr double kChunkOverheadFlops = 300;

struct Blocking : WinogradBlocking {
  // Small images in a batch (dilation phases, deep layers): the tiles of all images numbered as one
  // space, so a group spans images and the GEMMs get whole NR panels instead of one padded image.
  bool across_images = false;
  double cached_bytes;   // U above this (the machine model's last-level share) is read from memory per group
};

class WinogradConv final : public ConvImpl {
 public:
  WinogradConv(const Geometry& g, int m, const SgemmKernel& kernel, const WinogradTransforms& tr, int threads,
               const Blocking& b)
      : g_(g), m_(m), alpha_(m + 2), kernel_(kernel), threads_(threads), b_(b) {
    tiles_h_ = ceil_div(g.P, m), tiles_w_ = ceil_div(g.Q, m);
    lanes_ = tr.lanes;
    input_ = m == 2 ? tr.input_f2x2 : tr.input_f4x4;
    output_ = m == 2 ? tr.output_f2x2 : tr.output_f4x4;
    filter_ = m == 2 ? tr.filter_f2x2 : tr.filter_f4x4;
  }

  Algorithm algorithm() const override { return Algorithm::Winograd; }
  std::string name() const override {
    // "sgemm_ukernel_6x16__avx2" -> "winograd_f2x2_3x3_6x16__avx2"
    return std::string(m_ == 2 ? "winograd_f2x2_3x3_" : "winograd_f4x4_3x3_") +
           std::string(kernel_.name).substr(std::string("sgemm_ukernel_").size());
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "F(" << m_ << "x" << m_ << ",3x3), " << alpha_ << "x" << alpha_ << " tiles (" << tiles_h_ << "x" << tiles_w_
      << " per image): " << alpha2() << " GEMMs [" << g_.Kg << " x " << g_.Cg << "] x [" << g_.Cg << " x tiles] on "
      << kernel_.name << " (MR " << kernel_.blocking.mr << ", NR " << kernel_.blocking.nr << ", KC " << b_.kc << "), "
      << b_.tiles << " tiles per group, " << b_.chunk_rows << " output channels per block, ";
    if (b_.across_images) s << "tile groups spanning the " << g_.N << " images, ";
    if (b_.splits > 1) s << "output channels split " << b_.splits << " ways, ";
    s << grid().tasks() << " tasks, " << scratch().bytes_per_thread() / 1024 << " KiB of V and M per thread";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return scratch().total(threads_); }
  std::size_t packed_weights_floats() const override { return std::size_t(g_.groups * group_floats() + g_.K); }

  void pack_weights(const float* w, const float* bias, float* packed) const override {
    const int mr = kernel_.blocking.mr;
    const int64_t Cg = g_.Cg, a_floats = a_panel_floats(), a2 = alpha2(), panels = ceil_div(g_.Kg, mr);
    // A panel's mr filters of one input channel at a time: each of the alpha^2 planes then receives
    // mr consecutive floats (zeros past Kg), and every plane is written front to back. (Filter by
    // filter, each transform scattered alpha^2 floats planes apart: 160-470 MB/s, which in training,
    // where the weights change every step, made packing half of a ResNet-18 step.) Panels are
    // independent: the plan's threads share them.
    const TaskGrid<2> tasks = task_grid(g_.groups, panels);
    ThreadPool(threads_).for_each(tasks.tasks(), [&](int64_t task, int) {
      const auto [grp, panel] = tasks(task);
      const int64_t k0 = panel * mr;
      const int rows = int(std::min<int64_t>(mr, g_.Kg - k0));
      constexpr int L = kWinogradFilterLanes;
      alignas(64) double u[36 * L];
      for (int64_t c = 0; c < Cg; ++c) {
        filter_(w + ((grp * g_.Kg + k0) * Cg + c) * 9, Cg * 9, rows, u);
        float* dst = packed + grp * group_floats() + (k0 / mr) * Cg * mr + c * mr;
        for (int64_t xi = 0; xi < a2; ++xi) {
          for (int r = 0; r < rows; ++r) dst[xi * a_floats + r] = float(u[xi * L + r]);
          for (int r = rows; r < mr; ++r) dst[xi * a_floats + r] = 0.0f;
        }
      }
    });
    float* b = packed + g_.groups * group_floats();
    for (int64_t k = 0; k < g_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }

  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    const GemmBlocking& bl = kernel_.blocking;
    const int64_t tiles = space_tiles(), PQ = g.P * g.Q;
    const float* bias = packed + g.groups * group_floats();
    const int64_t tiles_per_image = b_.across_images ? tiles_h_ * tiles_w_ : INT64_MAX;
    const TaskGrid<4> tasks = grid();
    const ThreadScratch scratch_of = scratch();
    pool.for_each(tasks.tasks(), [&](int64_t task, int slot) {
      const auto [n, grp, tg, split] = tasks(task);
      const int64_t t0 = tg * b_.tiles, count = std::min(b_.tiles, tiles - t0);
      // M and V keep whole NR panels; a last panel of NR/2 tiles or fewer is transformed and
      // multiplied NR/2 wide (the half-width kernel): a 7x7 image's 16 tiles were run 32 wide.
      const int64_t columns = round_up(count, bl.nr), used = gemm_columns(count, kernel_);
      float* v = scratch_of.of<float>(workspace, slot);
      float* mbuf = v + v_floats();
      {
        ScopedPhase phase(0, "input_transform");
        WinogradInputArgs a;
        a.x = x + (n * g.C + grp * g.Cg) * g.H * g.W;
        a.channels = g.Cg, a.H = g.H, a.W = g.W, a.pad_top = g.pad_t, a.pad_left = g.pad_l;
        a.tiles_w = tiles_w_, a.t0 = t0, a.tiles = count, a.columns = used, a.nr = bl.nr;
        a.v = v, a.xi_stride = v_xi_stride();
        a.tiles_per_image = tiles_per_image, a.image_stride = g.C * g.H * g.W;
        input_(a);
      }
      const float* u = packed + grp * group_floats();
      const int64_t k_end = std::min(g.Kg, (split + 1) * b_.split_rows);
      for (int64_t k0 = split * b_.split_rows; k0 < k_end; k0 += b_.chunk_rows) {
        const int64_t rows = std::min(b_.chunk_rows, k_end - k0);
        {
          ScopedPhase phase(1, "products");
          for (int64_t xi = 0; xi < alpha2(); ++xi) {
            const float* a = u + xi * a_panel_floats() + (k0 / bl.mr) * g.Cg * bl.mr;
            for (int64_t p0 = 0; p0 < g.Cg; p0 += b_.kc) {
              const int64_t kc = std::min(b_.kc, g.Cg - p0);
              gemm_macro_kernel(kernel_, rows, used, kc, a + p0 * bl.mr, g.Cg * bl.mr,
                                v + xi * v_xi_stride() + p0 * bl.nr, g.Cg * bl.nr, mbuf + xi * m_xi_stride(),
                                columns, p0 > 0, nullptr);
            }
          }
        }
        ScopedPhase phase(2, "output_transform");
        WinogradOutputArgs a;
        a.m = mbuf, a.ldm = columns, a.xi_stride = m_xi_stride(), a.channels = rows;
        a.bias = bias + grp * g.Kg + k0;
        a.y = y + (n * g.K + grp * g.Kg + k0) * PQ;
        if (epilogue_.active()) a.epilogue = &epilogue_;
        if (residual) a.residual = residual + (n * g.K + grp * g.Kg + k0) * PQ;
        a.P = g.P, a.Q = g.Q, a.tiles_w = tiles_w_, a.t0 = t0, a.tiles = count;
        a.tiles_per_image = tiles_per_image, a.image_stride = g.K * PQ;
        output_(a);
      }
    });
  }

  WorkCounts work() const override {
    const int64_t tiles = space_tiles();
    const auto [rows, columns] = winograd_gemm_shape(tiles, b_.tiles, g_.Kg, b_.split_rows, b_.chunk_rows, kernel_);
    const double images = double(tile_spaces() * g_.groups);
    WorkCounts w;
    w.gemm_flops = 2.0 * images * double(alpha2()) * rows * columns * double(g_.Cg);
    w.gemm_m = double(b_.chunk_rows), w.gemm_n = double(b_.tiles), w.gemm_k = double(g_.Cg);
    w.transform_flops = images * (double(b_.splits) * columns * double(g_.Cg) * input_transform_flops(m_) +
                                  double(tiles) * double(g_.Kg) * output_transform_flops(m_));
    const double weight_bytes = 4.0 * double(packed_weights_floats());
    // U is read once per tile group; from memory each time when it cannot stay cached.
    const double weight_reads = weight_bytes > b_.cached_bytes ? double(tile_spaces() * b_.tile_groups) : 1.0;
    w.dram_bytes = 4.0 * double(g_.N) * double(g_.input_image() + g_.output_image()) + weight_bytes * weight_reads;
    // Fixed costs that matter only when the GEMMs are tiny (depthwise, few channels per group):
    // per macro-kernel call (partial tiles through a buffer) and per vector of tiles (edge set-up).
    const double calls = double(tile_spaces() * g_.groups * b_.tile_groups) * double(alpha2()) * double(ceil_div(g_.Cg, b_.kc)) *
                         double(ceil_div(g_.Kg, b_.chunk_rows) + b_.splits - 1);
    const double chunks = double(tile_spaces() * g_.groups * b_.splits) * columns / double(lanes_);
    w.scalar_flops = kCallOverheadFlops * calls + kChunkOverheadFlops * chunks;
    w.parallel_tasks = double(grid().tasks());
    return w;
  }

 private:
  int64_t alpha2() const { return alpha_ * alpha_; }
  int64_t a_panel_floats() const { return packed_a_floats(g_.Kg, g_.Cg, kernel_.blocking.mr); }
  int64_t group_floats() const { return alpha2() * a_panel_floats(); }
  int64_t v_xi_stride() const { return winograd_xi_stride(b_.tiles * g_.Cg); }
  int64_t m_xi_stride() const { return winograd_xi_stride(b_.chunk_rows * b_.tiles); }
  int64_t v_floats() const { return alpha2() * v_xi_stride(); }
  // A thread's V (transformed input tiles), then its M (products before the output transform).
  ThreadScratch scratch() const {
    return ThreadScratch(align_up(std::size_t(v_floats()) * sizeof(float)) +
                         align_up(std::size_t(alpha2() * m_xi_stride()) * sizeof(float)));
  }
  // Tasks: (tile space, group, tile group, split of the output channels).
  TaskGrid<4> grid() const { return task_grid(tile_spaces(), g_.groups, b_.tile_groups, b_.splits); }
  // Images tiled apart (each its own tile space) or all as one space, and the tiles of a space.
  int64_t tile_spaces() const { return b_.across_images ? 1 : g_.N; }
  int64_t space_tiles() const { return (b_.across_images ? g_.N : 1) * tiles_h_ * tiles_w_; }

  Geometry g_;
  int m_, alpha_;
  const SgemmKernel& kernel_;
  int threads_;
  Blocking b_;
  int64_t tiles_h_, tiles_w_;
  int lanes_;
  WinogradInputFn input_;
  WinogradOutputFn output_;
  WinogradFilterFn filter_;
};

// Bytes of one thread's V and M for T tiles per group and `rows` output channels per block.
double scratch_estimate(int points, const Geometry& g, double tiles, double rows) {
  return double(points) * 4.0 *
         (double(winograd_xi_stride(int64_t(tiles * double(g.Cg)))) + double(winograd_xi_stride(int64_t(rows * tiles))));
}

}  // namespace

bool winograd_blocking(const Geometry& g, const PlanContext& ctx, const SgemmKernel& kernel, int64_t tiles,
                       int64_t spaces, int points, double input_flops, double fixed_bytes, const std::string& name,
                       Proposals& out, WinogradBlocking& b) {
  const GemmBlocking& bl = kernel.blocking;
  // Sizes that cannot be represented are refused rather than wrapped.
  const double packed_floats = double(g.groups) * double(points) * double(round_up(g.Kg, bl.mr)) * double(g.Cg) + double(g.K);
  if (packed_floats > 1e17 || double(g.Cg) * points * 4.0 * bl.nr > 1e17) {
    char floats[32];  // may be past int64: printed as a double
    std::snprintf(floats, sizeof floats, "%.3g", packed_floats);
    out.decline(name, std::string("transformed weights too large (") + floats + " floats)");
    return false;
  }
  b.kc = std::min(bl.kc, g.Cg);
  // Output channels per block: all of Kg up to MC (the A block of the macro-kernel), in equal blocks.
  const int64_t blocks = ceil_div(g.Kg, bl.mc);
  b.chunk_rows = round_up(ceil_div(g.Kg, blocks), bl.mr);
  // Tiles per group: the most that keep V and M within the L2 share, at least one NR panel.
  int64_t cap = std::min(kMaxWinogradTilesPerGroup, round_up(tiles, bl.nr));
  while (cap > bl.nr && scratch_estimate(points, g, double(cap), double(b.chunk_rows)) > ctx.machine.winograd_group_bytes())
    cap -= bl.nr;
  // Then within the workspace budget (what the caller's own buffers leave of it): fewer tiles, then
  // fewer output channels per block.
  auto total = [&](int64_t t, int64_t rows) {
    return fixed_bytes + double(ctx.threads) * scratch_estimate(points, g, double(t), double(rows));
  };
  while (cap > bl.nr && total(cap, b.chunk_rows) > double(ctx.workspace_limit)) cap -= bl.nr;
  while (b.chunk_rows > bl.mr && total(cap, b.chunk_rows) > double(ctx.workspace_limit))
    b.chunk_rows = std::max<int64_t>(bl.mr, round_up(b.chunk_rows / 2, bl.mr));
  if (total(cap, b.chunk_rows) > double(ctx.workspace_limit)) {
    const double needed = total(bl.nr, bl.mr);
    out.decline(name, workspace_too_small(needed > 1e18 ? std::size_t(-1) : std::size_t(needed), ctx.workspace_limit));
    return false;
  }
  // Equal groups of whole panels.
  b.tile_groups = ceil_div(tiles, cap);
  b.tiles = std::min(cap, round_up(ceil_div(tiles, b.tile_groups), bl.nr));
  b.tile_groups = ceil_div(tiles, b.tiles);
  // Tasks that leave threads idle at the end (small images): split the output channels so that the
  // tasks fill whole rounds. Each split transforms the input again, so only when that costs less
  // than the idle time it saves.
  const int64_t tasks = spaces * g.groups * b.tile_groups, threads = ctx.threads;
  b.splits = 1;
  if (leaves_threads_idle(tasks, int(threads))) {
    const int64_t splits = std::min(threads / std::gcd(tasks, threads), ceil_div(g.Kg, bl.mr));
    const double idle = double(ceil_div(tasks, threads) * threads) / double(tasks) - 1;
    // Time per transform flop over time per product flop: the model's (the products run near the
    // FMA peak, the transforms at a fraction of it).
    const double redo =
        double(splits - 1) * ctx.machine.winograd_transform_cost_ratio * input_flops / (2.0 * points * double(g.Kg));
    if (idle > redo) b.splits = splits;
  }
  b.split_rows = b.splits == 1 ? g.Kg : round_up(ceil_div(g.Kg, b.splits), bl.mr);
  b.splits = ceil_div(g.Kg, b.split_rows);
  b.chunk_rows = std::min(b.chunk_rows, round_up(b.split_rows, bl.mr));
  return true;
}

namespace {

void propose_variant(int m, const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const char* name = m == 2 ? "winograd_f2x2_3x3" : "winograd_f4x4_3x3";
  const SgemmKernel& kernel = sgemm_kernel(ctx.isa);
  Blocking b;
  b.cached_bytes = ctx.machine.cached_bytes();
  // An image smaller than a full tile group: all images as one space of tiles (same bits per tile).
  const int64_t image_tiles = ceil_div(g.P, m) * ceil_div(g.Q, m);
  b.across_images = g.N > 1 && image_tiles < kMaxWinogradTilesPerGroup;
  const int64_t tiles = b.across_images ? g.N * image_tiles : image_tiles;
  const int64_t spaces = b.across_images ? 1 : g.N;
  if (winograd_blocking(g, ctx, kernel, tiles, spaces, (m + 2) * (m + 2), input_transform_flops(m), 0, name, out, b))
    out.add(std::make_unique<WinogradConv>(g, m, kernel, winograd_transforms(ctx.isa), ctx.threads, b));
}

// G known at compile time: the loops unroll and the constants fold, with the same operations in
// the same order, so the same bits as the packed path.
template <int A>
void filter_transform(const double (&G)[A][3], const float* g, double* u) {
  double t[A][3];  // G g
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < 3; ++j) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < A; ++j) u[i * A + j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
}

}  // namespace

void winograd_filter_transform(int m, const float* g, double* u) {
  if (m == 2)
    filter_transform(kWinogradG2, g, u);
  else
    filter_transform(kWinogradG4, g, u);
}

void propose_winograd(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  std::string why;
  auto add = [&](const std::string& r) { why += (why.empty() ? "" : "; ") + r; };
  auto pair = [](int64_t a, int64_t b) { return a == b ? std::to_string(a) : std::to_string(a) + "x" + std::to_string(b); };
  if (g.R != 3 || g.S != 3) add("kernel " + std::to_string(g.R) + "x" + std::to_string(g.S) + " (needs 3x3)");
  if (g.stride_h != 1 || g.stride_w != 1) add("stride " + pair(g.stride_h, g.stride_w) + " (needs 1)");
  if (!why.empty()) {
    out.decline("winograd", why);
    return;
  }
  if (g.dil_h == 1 && g.dil_w == 1) {
    propose_variant(2, g, ctx, out);
    propose_variant(4, g, ctx, out);
    return;
  }
  // Dilated: the same tiles over each input phase (dilated_phases.hpp).
  for (int m : {2, 4}) {
    const std::string family = m == 2 ? "winograd_f2x2_3x3" : "winograd_f4x4_3x3";
    auto make = [m](const Geometry& phase, const PlanContext& c, std::string* reason) -> std::unique_ptr<ConvImpl> {
      Proposals p;
      propose_variant(m, phase, c, p);
      if (!p.impls().empty()) return std::move(p.impls().front());
      *reason = p.declined().empty() ? "no phase implementation" : p.declined().front().reason;
      return nullptr;
    };
    std::string reason;
    if (auto impl = make_dilated_by_phases(g, ctx, family, make, &reason, m))
      out.add(std::move(impl));
    else
      out.decline(family + "_dilated", reason);
  }
}

}  // namespace fastconv::detail
