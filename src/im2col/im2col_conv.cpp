// Im2col + GEMM: y_g [Kg x P*Q] = W_g [Kg x Cg*R*S] * lowered(x_g) [Cg*R*S x P*Q] per image and
// group, on the packed SGEMM. Weights are packed once into the microkernel's A panels; the lowered
// matrix is never built: each task packs B panels for a block of output pixels straight from the
// input (1x1 stride-1 layers pack the input rows as they are). The block width is chosen so that the
// packing buffers of all threads fit the workspace budget; the depth blocking (KC) never changes, so
// every budget gives the same bits.
#include "im2col/im2col_conv.hpp"

#include <algorithm>
#include <sstream>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "im2col/im2col_pack.hpp"

namespace fastconv::detail {
namespace {

// Pixels per task when memory allows: the packed B block (KC x 512 floats, 512 KiB) streams through
// L2 while the weights' A block stays there; wider blocks measured no faster.
constexpr int64_t kPreferredPixels = 512;

struct Blocking {
  int64_t pixels;    // output pixels per task (a multiple of NR, or all of P*Q)
  int64_t n_chunks;  // pixel blocks per image
  int64_t m_chunk;   // output channels per task (a multiple of MR, or all of Kg)
  int64_t m_chunks;
  int64_t kc;        // depth of a packed block: min(KC, Cg*R*S)
};

class Im2colConv final : public ConvImpl {
 public:
  Im2colConv(const Geometry& g, const SgemmKernel& kernel, int threads, const Blocking& b)
      : g_(g), kernel_(kernel), threads_(threads), b_(b), kdim_(g.Cg * g.R * g.S),
        pointwise_(g.is_pointwise()) {}

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
      << g_.N * g_.groups * b_.n_chunks * b_.m_chunks << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return std::size_t(threads_) * block_bytes(); }
  std::size_t packed_weights_floats() const override {
    return std::size_t(g_.groups * panels_per_group() + g_.K);
  }
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    for (int64_t grp = 0; grp < g_.groups; ++grp)
      pack_a_panels(w + grp * g_.Kg * kdim_, kdim_, g_.Kg, kdim_, kernel_.blocking.mr, packed + grp * panels_per_group());
    float* b = packed + g_.groups * panels_per_group();
    for (int64_t k = 0; k < g_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool) const override {
    const Geometry& g = g_;
    const GemmBlocking& bl = kernel_.blocking;
    const int64_t PQ = g.P * g.Q;
    const float* bias = packed + g.groups * panels_per_group();
    const int64_t per_image = g.groups * b_.n_chunks * b_.m_chunks;
    pool.for_each(g.N * per_image, [&](int64_t task, int slot) {
      const int64_t n = task / per_image, grp = task / (b_.n_chunks * b_.m_chunks) % g.groups;
      const int64_t nc = task / b_.m_chunks % b_.n_chunks, mc = task % b_.m_chunks;
      const int64_t n0 = nc * b_.pixels, ncols = std::min(b_.pixels, PQ - n0);
      const int64_t m0 = mc * b_.m_chunk, mrows = std::min(b_.m_chunk, g.Kg - m0);
      const float* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
      const float* a = packed + grp * panels_per_group() + (m0 / bl.mr) * kdim_ * bl.mr;
      float* yg = y + (n * g.K + grp * g.Kg + m0) * PQ + n0;
      float* b_pack = at_offset<float>(workspace, std::size_t(slot) * block_bytes());
      const std::vector<PixelRun> runs = pointwise_ ? std::vector<PixelRun>() : pixel_runs(g, n0, ncols, bl.nr);
      for (int64_t p0 = 0; p0 < kdim_; p0 += b_.kc) {
        const int64_t kc = std::min(b_.kc, kdim_ - p0);
        const bool last = p0 + kc == kdim_;
        if (pointwise_)
          pack_b_panels(xg + p0 * PQ + n0, PQ, kc, ncols, bl.nr, b_pack);
        else
          pack_b_im2col(g, xg, p0, kc, runs, ncols, bl.nr, b_pack);
        for (int64_t i0 = 0; i0 < mrows; i0 += bl.mc) {
          const int64_t rows = std::min(bl.mc, mrows - i0);
          gemm_macro_kernel(kernel_, rows, ncols, kc, a + (i0 / bl.mr) * kdim_ * bl.mr + p0 * bl.mr, kdim_ * bl.mr,
                            b_pack, kc * bl.nr, yg + i0 * PQ, PQ, p0 > 0,
                            last ? bias + grp * g.Kg + m0 + i0 : nullptr);
        }
      }
    });
  }
  WorkCounts work() const override {
    const GemmBlocking& bl = kernel_.blocking;
    const double PQ = double(g_.P * g_.Q);
    const double cols = double(b_.n_chunks) * double(round_up(b_.pixels, bl.nr));  // padded to NR
    WorkCounts w;
    w.gemm_flops = 2.0 * double(g_.N * g_.groups) * double(round_up(g_.Kg, bl.mr)) * cols * double(kdim_);
    w.gemm_m = double(g_.Kg), w.gemm_n = PQ, w.gemm_k = double(kdim_);
    w.pack_elements = double(g_.N * g_.groups * b_.m_chunks) * double(kdim_) * cols * (pointwise_ ? 0.25 : 1.0);
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) +
                          double(g_.K * kdim_));
    w.parallel_tasks = double(g_.N * g_.groups * b_.n_chunks * b_.m_chunks);
    return w;
  }

 private:
  int64_t panels_per_group() const { return packed_a_floats(g_.Kg, kdim_, kernel_.blocking.mr); }
  std::size_t block_bytes() const {
    return align_up(std::size_t(packed_b_floats(b_.kc, b_.pixels, kernel_.blocking.nr)) * sizeof(float));
  }

  Geometry g_;
  const SgemmKernel& kernel_;
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
  auto bytes_for = [&](int64_t pixels) {
    return std::size_t(ctx.threads) * align_up(std::size_t(packed_b_floats(b.kc, pixels, bl.nr)) * sizeof(float));
  };
  // The widest pixel block up to the preferred width that fits the budget with every thread's buffer.
  int64_t cap = std::min(kPreferredPixels, round_up(PQ, bl.nr));
  if (bytes_for(bl.nr) > ctx.workspace_limit) {
    out.decline("im2col", workspace_too_small(bytes_for(bl.nr), ctx.workspace_limit));
    return;
  }
  while (cap > bl.nr && bytes_for(cap) > ctx.workspace_limit) cap -= bl.nr;
  // P*Q in equal blocks no wider than the cap; more, narrower blocks (down to 4 panels) when
  // images x groups would leave threads idle: that costs nothing, the weights are packed once.
  const int64_t wanted_tasks = ctx.threads == 1 ? 1 : 2 * ctx.threads;
  b.n_chunks = ceil_div(PQ, cap);
  if (g.N * g.groups * b.n_chunks < wanted_tasks)
    b.n_chunks = std::max(b.n_chunks, std::min(ceil_div(wanted_tasks, g.N * g.groups), ceil_div(PQ, 4 * bl.nr)));
  b.pixels = std::min(round_up(ceil_div(PQ, b.n_chunks), bl.nr), cap);
  b.n_chunks = ceil_div(PQ, b.pixels);
  // Still too few tasks (small images): split the output channels too; each split packs B again.
  const int64_t tasks = g.N * g.groups * b.n_chunks;
  const int64_t want = tasks >= wanted_tasks ? 1 : ceil_div(wanted_tasks, tasks);
  b.m_chunks = std::max<int64_t>(1, std::min(want, ceil_div(g.Kg, 4 * bl.mr)));
  b.m_chunk = round_up(ceil_div(g.Kg, b.m_chunks), bl.mr);
  b.m_chunks = ceil_div(g.Kg, b.m_chunk);
  out.add(std::make_unique<Im2colConv>(g, kernel, ctx.threads, b));
}

}  // namespace fastconv::detail
