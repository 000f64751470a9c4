// Im2col + GEMM: y_g [Kg x P*Q] = W_g [Kg x Cg*R*S] * lowered(x_g) [Cg*R*S x P*Q] per image and
// group, on the packed SGEMM. Weights are packed once into the microkernel's A panels; the lowered
// matrix is never built: each task packs B panels for a block of output pixels straight from the
// input (1x1 stride-1 layers pack the input rows as they are). Blocks are sized so that the packing
// buffers of all threads fit the workspace budget; the depth blocking (KC) never changes, so every
// budget gives the same bits.
//
// (Tried and dropped: pixels as the MR rows of the tiles, stored transposed, for small images; it
// pads less on 7x7, but measured 3-30% slower than this on every small layer of the suite.)
#include "im2col/im2col_conv.hpp"

#include <algorithm>
#include <sstream>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "core/phase_stats.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "im2col/im2col_pack.hpp"

namespace fastconv::detail {
namespace {

// Pixels per block when memory allows: a KC x 512 packed block (512 KiB) streams through L2 while
// the weights' block stays there; wider blocks measured no faster.
constexpr int64_t kPreferredPixels = 512;

// A packed block of kc x pixels, panels im2col_panel_stride() apart.
std::size_t im2col_block_bytes(int64_t kc, int64_t pixels, int nr) {
  return align_up(std::size_t(ceil_div(pixels, nr) * im2col_panel_stride(kc, nr)) * sizeof(float));
}

// The pixel runs of a block of `pixels`.
std::size_t im2col_runs_bytes(const Geometry& g, int64_t pixels) {
  return align_up(std::size_t(max_pixel_runs(g, pixels)) * sizeof(PixelRun));
}

// A thread's scratch: its packed block, then (unless pointwise) its pixel runs and one lowered row.
std::size_t im2col_thread_bytes(const Geometry& g, int64_t kc, int64_t pixels, int nr) {
  if (g.is_pointwise()) return im2col_block_bytes(kc, pixels, nr);
  const std::size_t line = align_up(std::size_t(ceil_div(pixels, nr) * nr) * sizeof(float));
  return im2col_block_bytes(kc, pixels, nr) + im2col_runs_bytes(g, pixels) + line;
}

struct Blocking {
  int64_t pixels;    // the widest pixel block (whole half panels): sizes the packing buffer
  int64_t n_chunks;  // pixel blocks per image, of ceil(P*Q/(NR/2)) half panels spread evenly
  int64_t m_chunk;   // output channels per task (whole MR panels)
  int64_t m_chunks;
  int64_t kc;        // depth of a packed block: min(KC, Cg*R*S)
};

class Im2colConv final : public ConvImpl {
 public:
  Im2colConv(const Geometry& g, const SgemmKernel& kernel, int threads, const Blocking& b)
      : g_(g), kernel_(kernel), pack_im2col_(pack_b_im2col_for(kernel.isa)), threads_(threads), b_(b),
        kdim_(g.Cg * g.R * g.S), pointwise_(g.is_pointwise()) {}

  Algorithm algorithm() const override { return Algorithm::Im2col; }
  std::string name() const override {
    // "sgemm_ukernel_6x16__avx2" -> "im2col_gemm_6x16__avx2"
    return std::string(pointwise_ ? "im2col_1x1_gemm_" : "im2col_gemm_") +
           std::string(kernel_.name).substr(std::string("sgemm_ukernel_").size());
  }
  std::string describe() const override {
    std::ostringstream s;
    s << (pointwise_ ? "1x1 stride 1: GEMM on the input rows, " : "implicit lowering packed per block, ") << kernel_.name
      << " (MR " << kernel_.blocking.mr << ", NR " << kernel_.blocking.nr << ", MC " << kernel_.blocking.mc << ", KC "
      << b_.kc << "), " << b_.pixels << " pixels x " << b_.m_chunk << " channels per task, "
      << grid().tasks() << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return scratch().total(threads_); }
  std::size_t packed_weights_floats() const override {
    // K rounded up to MR can overflow where K*C*R*S did not: checked.
    const int64_t per_group = checked_mul(round_up(g_.Kg, kernel_.blocking.mr), kdim_, "im2col packed weights");
    return std::size_t(checked_add(checked_mul(g_.groups, per_group, "im2col packed weights"), g_.K, "im2col packed weights"));
  }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    for (int64_t grp = 0; grp < g_.groups; ++grp)
      pack_a_panels(kernel_.transpose_rows, w + grp * g_.Kg * kdim_, kdim_, g_.Kg, kdim_, kernel_.blocking.mr,
                    packed + grp * panels_per_group());
    float* b = packed + g_.groups * panels_per_group();
    for (int64_t k = 0; k < g_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    const GemmBlocking& bl = kernel_.blocking;
    const int64_t PQ = g.P * g.Q;
    const float* bias = packed + g.groups * panels_per_group();
    const bool seed = residual && residual == y;
    const TaskGrid<4> tasks = grid();
    const ThreadScratch scratch_of = scratch();
    pool.for_each(tasks.tasks(), [&](int64_t task, int slot) {
      const auto [n, grp, nc, mc] = tasks(task);
      // Of the ceil(PQ / (NR/2)) half panels, block nc's run: blocks differ by half a panel at most
      // (in whole panels, 784 pixels split 416 + 368, 13 panels against 11.5).
      const int64_t half = kernel_.half_nr;
      const Range block = run_of(ceil_div(PQ, half), b_.n_chunks, nc);
      const int64_t n0 = block.begin * half, ncols = std::min(block.end * half, PQ) - n0;
      const int64_t m0 = mc * b_.m_chunk, mrows = std::min(b_.m_chunk, g.Kg - m0);
      const float* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
      const float* a = packed + grp * panels_per_group() + (m0 / bl.mr) * kdim_ * bl.mr;
      float* yg = y + (n * g.K + grp * g.Kg + m0) * PQ + n0;
      float* b_pack = scratch_of.of<float>(workspace, slot);
      PixelRun* runs = at_offset<PixelRun>(b_pack, block_bytes());
      float* line = pointwise_ ? nullptr : at_offset<float>(runs, im2col_runs_bytes(g, b_.pixels));
      const int64_t nruns = pointwise_ ? 0 : pixel_runs(g, n0, ncols, runs);
      for (int64_t p0 = 0; p0 < kdim_; p0 += b_.kc) {
        const int64_t kc = std::min(b_.kc, kdim_ - p0);
        const bool last = p0 + kc == kdim_;
        // The 1x1 packing writes panel after panel; the gather writes across panels (see its stride).
        const int64_t panel_stride = pointwise_ ? kc * bl.nr : im2col_panel_stride(kc, bl.nr);
        {  // the benches' phase split (fastconv_bench_layers: pack_% and gemm_%)
          ScopedPhase phase(0, "pack");
          if (pointwise_)
            kernel_.pack_b(xg + p0 * PQ + n0, PQ, kc, ncols, bl.nr, b_pack);
          else
            pack_im2col_(g, xg, p0, kc, runs, nruns, ncols, bl.nr, panel_stride, line, b_pack);
        }
        ScopedPhase phase(1, "gemm");
        // Post-ops on each tile of the last depth block. A residual that is the output itself seeds
        // the accumulation instead (the first block adds onto it), since the first block's tiles
        // overwrite it.
        TileEpilogue post;
        if (p0 == 0 && seed) post.seed_scale = epilogue_.params.residual_scale;
        if (last && epilogue_.active()) post.epilogue = &epilogue_;
        for (int64_t i0 = 0; i0 < mrows; i0 += bl.mc) {
          const int64_t rows = std::min(bl.mc, mrows - i0);
          if (last && residual && !seed) post.residual = residual + (yg - y) + i0 * PQ;
          gemm_macro_kernel(kernel_, rows, ncols, kc, a + (i0 / bl.mr) * kdim_ * bl.mr + p0 * bl.mr, kdim_ * bl.mr,
                            b_pack, panel_stride, yg + i0 * PQ, PQ, p0 > 0 || seed,
                            last ? bias + grp * g.Kg + m0 + i0 : nullptr, &post);
        }
      }
    });
  }
  WorkCounts work() const override {
    const GemmBlocking& bl = kernel_.blocking;
    const int64_t PQ = g_.P * g_.Q;
    // What the tiles compute, padding included (a last panel of NR/2 columns or fewer runs half-width).
    const double cols = double(gemm_columns(PQ, kernel_));
    WorkCounts w;
    w.gemm_flops = 2.0 * double(g_.N * g_.groups) * double(round_up(g_.Kg, bl.mr)) * cols * double(kdim_);
    w.gemm_m = double(g_.Kg), w.gemm_n = double(PQ), w.gemm_k = double(kdim_);
    w.pack_elements = double(g_.N * g_.groups * b_.m_chunks) * double(kdim_) * double(PQ) * lowering_cost(g_);
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) + double(g_.K * kdim_));
    w.parallel_tasks = double(grid().tasks());
    return w;
  }

 private:
  int64_t panels_per_group() const { return packed_a_floats(g_.Kg, kdim_, kernel_.blocking.mr); }
  std::size_t block_bytes() const { return im2col_block_bytes(b_.kc, b_.pixels, kernel_.blocking.nr); }
  ThreadScratch scratch() const { return ThreadScratch(im2col_thread_bytes(g_, b_.kc, b_.pixels, kernel_.blocking.nr)); }
  // Tasks: (image, group, pixel block, channel block).
  TaskGrid<4> grid() const { return task_grid(g_.N, g_.groups, b_.n_chunks, b_.m_chunks); }

  Geometry g_;
  const SgemmKernel& kernel_;
  PackIm2colFn pack_im2col_;
  int threads_;
  Blocking b_;
  int64_t kdim_;
  bool pointwise_;
};

}  // namespace

void propose_im2col(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const SgemmKernel& kernel = sgemm_kernel(ctx.isa);
  const GemmBlocking& bl = kernel.blocking;
  const int64_t PQ = g.P * g.Q, kdim = g.Cg * g.R * g.S;
  Blocking b;
  b.kc = std::min(bl.kc, kdim);
  auto bytes_for = [&](int64_t pixel_panels) {
    return ThreadScratch(im2col_thread_bytes(g, b.kc, pixel_panels * bl.nr, bl.nr)).total(ctx.threads);
  };
  if (bytes_for(1) > ctx.workspace_limit) {
    out.decline("im2col", workspace_too_small(bytes_for(1), ctx.workspace_limit));
    return;
  }
  const int64_t panels = ceil_div(PQ, bl.nr);
  int64_t cap = std::min(kPreferredPixels / bl.nr, panels);  // the widest block, in panels
  while (cap > 1 && bytes_for(cap) > ctx.workspace_limit) --cap;

  // Pixels in blocks no wider than the cap. When images x groups x blocks leave threads idle, split
  // further, into one task per thread: into more pixel blocks (each streams all the weights of its
  // channels) and/or channel blocks (each packs its pixels again), whichever moves the fewest floats.
  // (Two tasks per thread, so that a thread slowed by a neighbour holds up less, measured 7-15%
  // slower, interleaved in one process, on the small images (7x7-35x35) on the AVX-512 Xeon, and no
  // faster with AVX2 there: the second split packs every lowered element twice or halves the panels
  // each weight block meets.)
  const int64_t wanted_tasks = ctx.threads;
  const int64_t images = g.N * g.groups;
  b.n_chunks = ceil_div(panels, cap);
  b.m_chunks = 1;
  if (images * b.n_chunks < wanted_tasks) {
    const double weights = double(g.Kg * kdim), lowered = double(kdim * PQ) * (g.is_pointwise() ? 1.0 : 2.0);
    const int64_t max_n = std::max(b.n_chunks, ceil_div(panels, 4)), max_m = std::max<int64_t>(1, ceil_div(g.Kg, 4 * bl.mr));
    double best = 1e300;
    for (int64_t nc = b.n_chunks; nc <= max_n; ++nc)
      for (int64_t mc = 1; mc <= max_m; ++mc) {
        if (images * nc * mc < wanted_tasks && !(nc == max_n && mc == max_m)) continue;
        const double cost = double(nc) * weights + double(mc) * lowered + 1e-3 * double(nc * mc);
        if (cost < best) best = cost, b.n_chunks = nc, b.m_chunks = mc;
        break;  // more channel blocks for this nc only cost more
      }
  }
  // A few tasks should divide evenly among the threads.
  while (leaves_threads_idle(images * b.n_chunks * b.m_chunks, ctx.threads) && b.n_chunks < panels) ++b.n_chunks;
  b.pixels = ceil_div(ceil_div(PQ, int64_t(kernel.half_nr)), b.n_chunks) * kernel.half_nr;
  b.m_chunk = round_up(ceil_div(g.Kg, b.m_chunks), bl.mr);
  b.m_chunks = ceil_div(g.Kg, b.m_chunk);
  out.add(std::make_unique<Im2colConv>(g, kernel, ctx.threads, b));
}

}  // namespace fastconv::detail
