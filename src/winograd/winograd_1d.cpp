// One-dimensional Winograd for R x 1 and 1 x R kernels (R = 3, 5, 7: Inception's 1x7 and 7x1,
// 1x3/3x1 factorised layers): F(6,3), F(4,5) and F(2,7) on eight points, 8 products where direct
// convolution takes 18, 20 and 14 (2.25x, 2.5x, 1.75x fewer multiplies). Down the columns, a tile
// is m output rows of one column; the tiles of a row of tiles sit side by side along the image row,
// so the transforms are plain vector loads and stores (winograd_1d_kernels_impl.hpp). Per image and
// group, each task transforms a group of tiles (V = B^T d, straight into the GEMM's packed-B panels),
// runs the 8 GEMMs M_xi [Kg x T] = U_xi [Kg x Cg] * V_xi [Cg x T] on the SGEMM macro-kernel, and
// transforms back (y = A^T M + bias). A 1 x R kernel runs on the transposed image: the input planes
// are transposed into the workspace first and the output planes back (through the post-ops) last.
// The channel reduction is never split and its depth blocking is fixed, so the bits depend neither
// on the blocking nor on the threads. Measured error (F(2,7), 192 channels): 1.7e-6 of the largest
// output, like F(2x2,3x3).
//
// Non-finite inputs: a NaN or Inf spreads to the m outputs of each tile whose 8 input rows hold it.
#include "winograd/winograd_1d.hpp"

#include <algorithm>
#include <sstream>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "core/phase_stats.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "winograd/winograd_1d_kernels.hpp"
#include "winograd/winograd_conv.hpp"

namespace fastconv::detail {
namespace {

// 1 x R layers run transposed: the transposed input and output of every image, then a P x 16
// stage per thread (from `offset`).
std::size_t across_planes_bytes(const Geometry& g) {
  return align_up(std::size_t(g.N) * std::size_t(g.input_image() + g.output_image()) * sizeof(float));
}
ThreadScratch across_stage(const Geometry& g, std::size_t offset) {
  return ThreadScratch(std::size_t(g.P) * 16 * sizeof(float), offset);
}

constexpr int kPoints = kWinograd1dPoints;
// Floats of the transforms per tile and channel (input) and per tile and output channel (output),
// counting an FMA as two.
constexpr double kInputTransformFlops = 40;
double output_transform_flops(int m) { return 8 + 4.0 * m; }
constexpr double kCallOverheadFlops = 64;  // per macro-kernel call, in the model's scalar flops

// The problem with height and width exchanged (a 1 x R kernel becomes R x 1).
Geometry transposed(const Geometry& g) {
  ConvProblem p = g.problem;
  std::swap(p.in_height, p.in_width);
  std::swap(p.kernel_height, p.kernel_width);
  std::swap(p.stride_h, p.stride_w);
  std::swap(p.dilation_h, p.dilation_w);
  std::swap(p.pad_top, p.pad_left);
  std::swap(p.pad_bottom, p.pad_right);
  return Geometry(p);
}

using Blocking = WinogradBlocking;

class Winograd1d final : public ConvImpl {
 public:
  // g: the problem as asked; gw: the one computed (g, or g transposed for a 1 x R kernel).
  Winograd1d(const Geometry& g, bool across_w, const SgemmKernel& kernel, const Winograd1dKernels& kern, int threads,
             const Blocking& b)
      : g_(g), gw_(across_w ? transposed(g) : g), across_w_(across_w), R_(int(gw_.R)), m_(winograd_1d_outputs(R_)),
        kernel_(kernel), output_(kern.output[(R_ - 3) / 2]), input_(kern.input), threads_(threads), b_(b),
        tiles_h_(ceil_div(gw_.P, int64_t(m_))) {}

  Algorithm algorithm() const override { return Algorithm::Winograd; }
  std::string name() const override {
    // "sgemm_ukernel_12x32__avx512" -> "winograd_1d_f2_7x1_12x32__avx512"
    const std::string kernel = across_w_ ? "1x" + std::to_string(R_) : std::to_string(R_) + "x1";
    return "winograd_1d_f" + std::to_string(m_) + "_" + kernel + "_" +
           std::string(kernel_.name).substr(std::string("sgemm_ukernel_").size());
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "F(" << m_ << "," << R_ << ") " << (across_w_ ? "along the rows (on the transposed image)" : "down the columns")
      << ", " << kPoints << "-point tiles (" << tiles_h_ << "x" << gw_.Q << " per image): " << kPoints << " GEMMs ["
      << gw_.Kg << " x " << gw_.Cg << "] x [" << gw_.Cg << " x tiles] on " << kernel_.name << " (KC " << b_.kc
      << "), " << b_.tiles << " tiles per group, " << b_.chunk_rows << " output channels per block, ";
    if (b_.splits > 1) s << "output channels split " << b_.splits << " ways, ";
    s << grid().tasks() << " tasks, " << scratch().bytes_per_thread() / 1024 << " KiB of V and M per thread";
    if (across_w_) s << ", " << ((workspace_bytes() - scratch().total(threads_)) >> 10) << " KiB for the transposed input and output";
    return s.str();
  }
  std::size_t workspace_bytes() const override {
    return across_w_ ? stage_scratch().total(threads_) : scratch().total(threads_);
  }
  std::size_t packed_weights_floats() const override {
    return std::size_t(checked_add(checked_mul(gw_.groups, group_floats(), "winograd 1d packed weights"), gw_.K,
                                   "winograd 1d packed weights"));
  }
  // U_xi = G g per filter (in double, then rounded), into A panels of MR output channels per plane
  // xi. A 1 x R filter is stored as its R x 1 transpose would be: the same R floats.
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    const int mr = kernel_.blocking.mr;
    const int64_t Cg = gw_.Cg, Kg = gw_.Kg, a_floats = a_panel_floats();
    double G[kPoints][7] = {};
    for (int j = 0; j < 7; ++j) {
      double power = 1;
      for (int s = 0; s < R_; ++s, power *= kWinograd1dPoint[j]) G[j][s] = power / kWinograd1dRowScale[j];
    }
    G[7][R_ - 1] = 0.25;
    for (int64_t grp = 0; grp < gw_.groups; ++grp)
      for (int64_t k = 0; k < round_up(Kg, int64_t(mr)); ++k)
        for (int64_t c = 0; c < Cg; ++c) {
          float* dst = packed + grp * group_floats() + (k / mr) * Cg * mr + c * mr + k % mr;
          const float* f = w + ((grp * Kg + k) * Cg + c) * R_;
          for (int xi = 0; xi < kPoints; ++xi) {
            double u = 0;
            if (k < Kg)
              for (int s = 0; s < R_; ++s) u += G[xi][s] * double(f[s]);
            dst[xi * a_floats] = float(u);
          }
        }
    float* b = packed + gw_.groups * group_floats();
    for (int64_t k = 0; k < gw_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }

  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = gw_;
    const TransposeRowsFn transpose = kernel_.transpose_rows;
    float* xt = at_offset<float>(workspace, scratch().total(threads_));
    float* yt = xt + g.N * g.input_image();
    if (across_w_) {  // each input plane [H][W] as [W][H]
      pool.for_each(g_.N * g_.C, [&](int64_t plane, int) {
        const float* src = x + plane * g_.H * g_.W;
        for (int64_t h0 = 0; h0 < g_.H; h0 += 16)
          transpose(src + h0 * g_.W, g_.W, int(std::min<int64_t>(16, g_.H - h0)), g_.W, xt + plane * g_.H * g_.W + h0,
                    g_.H);
      });
      x = xt;
    }
    run_tiles(x, packed, across_w_ ? yt : y, workspace, pool, across_w_ ? nullptr : residual);
    if (!across_w_) return;
    // Each output plane back from [Q][P] to [P][Q], 16 columns at a time; with post-ops through a
    // stage of P x 16 (a residual that is y is read before y is written).
    const ThreadScratch stage_of = stage_scratch();
    const bool clamped = clamp_only();  // applied as the tiles were written
    pool.for_each(g_.N * g_.K, [&](int64_t plane, int slot) {
      const float* src = yt + plane * g_.P * g_.Q;
      float* dst = y + plane * g_.P * g_.Q;
      const float* r = residual ? residual + plane * g_.P * g_.Q : nullptr;
      float* stage = stage_of.of<float>(workspace, slot);
      for (int64_t q0 = 0; q0 < g_.Q; q0 += 16) {
        const int cols = int(std::min<int64_t>(16, g_.Q - q0));
        if (!epilogue_.active() || clamped) {
          transpose(src + q0 * g_.P, g_.P, cols, g_.P, dst + q0, g_.Q);
          continue;
        }
        transpose(src + q0 * g_.P, g_.P, cols, g_.P, stage, 16);
        epilogue_.apply_from(stage, 16, dst + q0, r ? r + q0 : nullptr, g_.Q, g_.P, cols);
      }
    });
  }

  WorkCounts work() const override {
    const int64_t tiles = image_tiles();
    const auto [rows, columns] = winograd_gemm_shape(tiles, b_.tiles, gw_.Kg, b_.split_rows, b_.chunk_rows, kernel_);
    const double images = double(gw_.N * gw_.groups);
    WorkCounts w;
    w.gemm_flops = 2.0 * images * kPoints * rows * columns * double(gw_.Cg);
    w.gemm_m = double(b_.chunk_rows), w.gemm_n = double(b_.tiles), w.gemm_k = double(gw_.Cg);
    w.transform_flops = images * (double(b_.splits) * columns * double(gw_.Cg) * kInputTransformFlops +
                                  double(tiles) * double(gw_.Kg) * output_transform_flops(m_));
    if (across_w_)  // both transposes, about a packed element each
      w.pack_elements = double(g_.N) * double(g_.input_image() + g_.output_image());
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) + double(packed_weights_floats()));
    const double calls = images * double(b_.tile_groups) * kPoints * double(ceil_div(gw_.Cg, b_.kc)) *
                         double(ceil_div(gw_.Kg, b_.chunk_rows) + b_.splits - 1);
    w.scalar_flops = kCallOverheadFlops * calls;
    w.parallel_tasks = double(grid().tasks());
    return w;
  }

 private:
  // The tasks on the column-wise problem gw_: input x [N][C][H][W], output y [N][K][P][Q].
  void run_tiles(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
                 const float* residual) const {
    const Geometry& g = gw_;
    const GemmBlocking& bl = kernel_.blocking;
    const int64_t tiles = image_tiles(), PQ = g.P * g.Q;
    const float* bias = packed + g.groups * group_floats();
    const TaskGrid<4> tasks = grid();
    const ThreadScratch scratch_of = scratch();
    pool.for_each(tasks.tasks(), [&](int64_t task, int slot) {
      const auto [n, grp, tg, split] = tasks(task);
      const int64_t t0 = tg * b_.tiles, count = std::min(b_.tiles, tiles - t0);
      const int64_t columns = round_up(count, int64_t(bl.nr)), used = gemm_columns(count, kernel_);
      float* v = scratch_of.of<float>(workspace, slot);
      float* mbuf = v + v_floats();
      Winograd1dInputArgs in;
      in.x = x + (n * g.C + grp * g.Cg) * g.H * g.W;
      in.channels = g.Cg, in.H = g.H, in.Q = g.W, in.pad_top = g.pad_t, in.m = m_;
      in.t0 = t0, in.tiles = count, in.columns = used, in.nr = bl.nr;
      in.v = v, in.xi_stride = v_xi_stride();
      {
        ScopedPhase phase(0, "input_transform");
        input_(in);
      }
      const float* u = packed + grp * group_floats();
      const int64_t k_end = std::min(g.Kg, (split + 1) * b_.split_rows);
      for (int64_t k0 = split * b_.split_rows; k0 < k_end; k0 += b_.chunk_rows) {
        const int64_t rows = std::min(b_.chunk_rows, k_end - k0);
        {
          ScopedPhase phase(1, "products");
          for (int xi = 0; xi < kPoints; ++xi) {
            const float* a = u + xi * a_panel_floats() + (k0 / bl.mr) * g.Cg * bl.mr;
            for (int64_t p0 = 0; p0 < g.Cg; p0 += b_.kc) {
              const int64_t kc = std::min(b_.kc, g.Cg - p0);
              gemm_macro_kernel(kernel_, rows, used, kc, a + p0 * bl.mr, g.Cg * bl.mr, v + xi * v_xi_stride() + p0 * bl.nr,
                                g.Cg * bl.nr, mbuf + xi * m_xi_stride(), columns, p0 > 0, nullptr);
            }
          }
        }
        Winograd1dOutputArgs out;
        out.m = mbuf, out.ldm = columns, out.xi_stride = m_xi_stride(), out.channels = rows;
        out.bias = bias + grp * g.Kg + k0;
        out.y = y + (n * g.K + grp * g.Kg + k0) * PQ;
        out.P = g.P, out.Q = g.Q, out.t0 = t0, out.tiles = count;
        // Transposed (1 x R) layers: the tiles go to a transposed image first; only a clamp activation
        // without a residual (the output kernel's, in registers) is applied there, before the transpose.
        if (epilogue_.active() && (!across_w_ || clamp_only())) out.epilogue = &epilogue_;
        if (residual) out.residual = residual + (n * g.K + grp * g.Kg + k0) * PQ;
        ScopedPhase phase(2, "output_transform");
        output_(out);
      }
    });
  }

  int64_t image_tiles() const { return tiles_h_ * gw_.Q; }
  // The epilogue is a clamp activation and no residual: the output kernel applies it in registers.
  bool clamp_only() const {
    float lo, hi;
    return !epilogue_.residual && activation_clamp(epilogue_.params, lo, hi);
  }
  int64_t a_panel_floats() const { return packed_a_floats(gw_.Kg, gw_.Cg, kernel_.blocking.mr); }
  int64_t group_floats() const { return kPoints * a_panel_floats(); }
  int64_t v_xi_stride() const { return winograd_xi_stride(b_.tiles * gw_.Cg); }
  int64_t m_xi_stride() const { return winograd_xi_stride(b_.chunk_rows * b_.tiles); }
  int64_t v_floats() const { return kPoints * v_xi_stride(); }
  // A thread's V (transformed input tiles), then its M (products before the output transform).
  ThreadScratch scratch() const {
    return ThreadScratch(align_up(std::size_t(v_floats()) * sizeof(float)) +
                         align_up(std::size_t(kPoints * m_xi_stride()) * sizeof(float)));
  }
  // 1 x R, after the threads' V and M: the transposed planes (across_planes_bytes), then a stage
  // per thread.
  ThreadScratch stage_scratch() const { return across_stage(g_, scratch().total(threads_) + across_planes_bytes(g_)); }
  TaskGrid<4> grid() const { return task_grid(gw_.N, gw_.groups, b_.tile_groups, b_.splits); }

  Geometry g_, gw_;
  bool across_w_;
  int R_, m_;
  const SgemmKernel& kernel_;
  Winograd1dOutputFn output_;
  Winograd1dInputFn input_;
  int threads_;
  Blocking b_;
  int64_t tiles_h_;
};

}  // namespace

void propose_winograd_1d(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const char* name = "winograd_1d";
  const bool down = g.S == 1 && (g.R == 3 || g.R == 5 || g.R == 7);
  const bool across = g.R == 1 && (g.S == 3 || g.S == 5 || g.S == 7);
  std::string why;
  auto add = [&](const std::string& r) { why += (why.empty() ? "" : "; ") + r; };
  if (!down && !across) add("kernel " + std::to_string(g.R) + "x" + std::to_string(g.S) + " (needs 3x1, 5x1, 7x1 or 1x3, 1x5, 1x7)");
  if (g.stride_h != 1 || g.stride_w != 1 || g.dil_h != 1 || g.dil_w != 1) add("stride and dilation 1 only");
  if ((down && (g.pad_l || g.pad_r)) || (across && (g.pad_t || g.pad_b)))
    add("padding across the kernel's 1-wide side (its outputs would be the bias alone)");
  if (g.Cg < 4 || g.Kg < 4) add("fewer than 4 channels per group in or out (the 8 GEMMs would be all overhead)");
  if (!why.empty()) {
    out.decline(name, why);
    return;
  }
  const Geometry gw = across ? transposed(g) : g;
  const SgemmKernel& kernel = sgemm_kernel(ctx.isa);
  const int64_t tiles = ceil_div(gw.P, int64_t(winograd_1d_outputs(int(gw.R)))) * gw.Q;
  // 1 x R: the transposed planes and the threads' stages (Winograd1d::stage_scratch), besides the
  // threads' V and M.
  const double fixed = across ? double(across_planes_bytes(g)) + double(across_stage(g, 0).total(ctx.threads)) : 0.0;
  Blocking b;
  if (!winograd_blocking(gw, ctx, kernel, tiles, gw.N, kPoints, kInputTransformFlops, fixed, name, out, b)) return;
  out.add(std::make_unique<Winograd1d>(g, across, kernel, winograd_1d_kernels(ctx.isa), ctx.threads, b));
}

}  // namespace fastconv::detail
