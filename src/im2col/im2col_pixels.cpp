// Pixel-major im2col + GEMM: y_g^T [P*Q x Kg] = lowered(x_g)^T [P*Q x Cg*R*S] * W_g^T, on the
// pixel-major microkernel (sgemm_pixel_kernel: 7 output pixels broadcast x NR output channels in
// vectors). The lowered input is packed per block into 7-pixel panels by the same gather as im2col
// (1x1 stride-1 layers copy 7 floats of each input row); the weights are packed once, per channel
// block, into panels of NR channels. Each task accumulates its pixels x channels block off to the
// side, from the bias, and transposes it into the NCHW output (through a stage where an epilogue
// follows).
//
// Why: the images of the deep layers of ImageNet networks (7x7, 14x14) fill 7-pixel tiles exactly,
// where im2col's 32-pixel panels (AVX-512) compute 64 columns for 49 pixels; the channels
// (multiples of 16 there) fill the vectors instead.
//
// im2col_implicit is the same product with no lowering at all: on an input with no padding (the
// planner's padded copy when the problem has some), every tap of every output pixel is at a fixed
// distance from the pixel's first tap, so the kernel (ImplicitUkernelFn) broadcasts A straight from
// the input: rows[i] + offsets[p]. Any image size, stride and dilation fills 7-pixel tiles (the
// pixels run across output rows), and nothing is packed but the weights, once.
#include "im2col/im2col_pixels.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "im2col/im2col_pack.hpp"
#include "planner/padded_copy.hpp"

namespace fastconv::detail {
namespace {

// The block's pixels x channels accumulator stays in L2: at most 128 Ki floats (512 KiB), e.g. 49
// pixels x 2640 channels, 196 x 664, 256 x 512.
constexpr int64_t kMaxAccumulator = 128 << 10;
// Output images of at most 256 pixels. Interleaved against im2col on the AVX-512 Xeon, 2 threads:
// 1.05-1.3x on the 7x7 and 14x14 layers of ResNet-50 and MobileNetV2 that pick it; 0.88-0.95x on
// 17x17, 28x28, 40x40 and 56x56, where the transposed outputs and the 7-pixel gathers cost more
// than the padding of 32-pixel panels saves.
constexpr int64_t kMaxImagePixels = 256;
// im2col_implicit: output images of at most 320 pixels (17x17), not 1x1. Interleaved against the
// best other implementation on the AVX-512 Xeon, 2 threads: 1.05-1.14x on 7x7 3x3 (512 channels),
// 17x17 1x7/7x1 and 3x3/s2 'valid' layers and the ViT patchify; 0.83-0.99x on 28x28 and 40x40
// outputs and 0.6-0.7x on 56x56 1x1 layers, whose taps in 256 channel planes miss L1 on every tile.
// 1x1 layers gain nothing over the packed path's row copies. Capped at AVX2 (6x16 tiles): 1.04-1.16x
// over im2col on the same 7x7, 14x14 and 17x17 layers.
constexpr int64_t kMaxImplicitPixels = 320;
// Strided, where im2col's lowering is a strided gather and direct runs instead: up to 28x28
// (ResNet-50's 3x3/s2 into 28x28: 1.06-1.09x over direct; 40x40: 0.95x im2col).
constexpr int64_t kMaxImplicitPixelsStrided = 784;
// Fewer output channels per group (depthwise layers) would fill a fraction of each vector.
constexpr int64_t kMinChannels = 8;

struct Blocking {
  int64_t pixels;    // the widest pixel block, whole 7-pixel panels
  int64_t n_chunks;  // pixel blocks per image
  int64_t channels;  // output channels per block, a multiple of the half-width tile (16): blocks
                     // split the channels evenly, each packed from a panel of its own
  int64_t m_chunks;  // channel blocks per group
  int64_t kc;        // depth of a packed block
  bool staged;       // an epilogue follows: the transposed block goes through a stage
  bool implicit;     // A read in place (im2col_implicit), not packed
};

// Leading dimensions: the accumulator's rows (pixels) and the transposed rows (channels), rounded
// up to a cache line (the implicit tiles write whole vectors: at most 16 floats).
int64_t acc_ld(int64_t channels) { return round_up(channels, 16); }
int64_t stage_ld(int64_t pixels) { return round_up(pixels, 16); }

// The columns a block of n channels computes: the packed path's tiles are NR or half_nr wide; the
// implicit path's last tile covers its channels in whole vectors (half_nr is one vector there).
int64_t tile_columns(int64_t n, const SgemmKernel& kernel, bool implicit) {
  return implicit ? round_up(n, int64_t(kernel.half_nr)) : gemm_columns(n, kernel);
}
struct ScratchLayout {
  std::size_t pack, runs, line, rows, acc, stage;  // pack, runs, line: packed A; rows: implicit A
  std::size_t total() const { return pack + runs + line + rows + acc + stage; }
};

ScratchLayout scratch_layout(const Geometry& g, const Blocking& b, int mr) {
  ScratchLayout s{};
  const int64_t panels = ceil_div(b.pixels, mr);
  if (b.implicit) {
    s.rows = align_up(std::size_t(b.pixels) * sizeof(const float*));
  } else {
    s.pack = align_up(std::size_t(panels * im2col_panel_stride(b.kc, mr)) * sizeof(float));
    const bool pointwise = g.is_pointwise();
    s.runs = pointwise ? 0 : align_up(std::size_t(max_pixel_runs(g, b.pixels)) * sizeof(PixelRun));
    s.line = pointwise ? 0 : align_up(std::size_t(panels * mr) * sizeof(float));
  }
  s.acc = align_up(std::size_t(b.pixels * acc_ld(b.channels)) * sizeof(float));
  s.stage = b.staged ? align_up(std::size_t(b.channels * stage_ld(b.pixels)) * sizeof(float)) : 0;
  return s;
}

class Im2colPixelsConv final : public ConvImpl {
 public:
  Im2colPixelsConv(const Geometry& g, const SgemmKernel& kernel, int threads, const Blocking& b)
      : g_(g), kernel_(kernel), pack_im2col_(pack_b_im2col_for(kernel.isa)), threads_(threads), b_(b),
        kdim_(g.Cg * g.R * g.S), pointwise_(g.is_pointwise()) {
    if (b.implicit) {  // tap (c, r, s) of a pixel, from its first tap; the proposal checked int32
      offsets_.reserve(std::size_t(kdim_));
      for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t r = 0; r < g.R; ++r)
          for (int64_t t = 0; t < g.S; ++t)
            offsets_.push_back(int32_t((c * g.H + r * g.dil_h) * g.W + t * g.dil_w));
    }
  }

  Algorithm algorithm() const override { return Algorithm::Im2col; }
  std::string name() const override {
    // "sgemm_ukernel_7x48__avx512" -> "im2col_pixels_gemm_7x48__avx512"
    return std::string(b_.implicit ? "im2col_implicit_gemm_" : "im2col_pixels_gemm_") +
           std::string(kernel_.name).substr(std::string("sgemm_ukernel_").size());
  }
  std::string describe() const override {
    std::ostringstream s;
    s << (b_.implicit ? "implicit pixel-major GEMM (the input read in place, no lowering; "
                      : "pixel-major GEMM (")
      << "pixels x channels, transposed into NCHW), " << kernel_.name << " (MR "
      << kernel_.blocking.mr << " pixels, NR " << kernel_.blocking.nr << " channels, KC " << b_.kc << "), "
      << b_.pixels << " pixels x " << b_.channels << " channels per task, " << grid().tasks() << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return scratch().total(threads_); }
  // The stage is in the workspace only when the planning context had an epilogue.
  void set_epilogue(const Epilogue& e) override {
    if (e.active() && !b_.staged) throw std::logic_error("im2col_pixels: an epilogue it was not planned with");
    epilogue_ = e;
  }
  std::size_t packed_weights_floats() const override {
    const int64_t per_group = checked_mul(b_.m_chunks, block_floats(), "im2col_pixels packed weights");
    return std::size_t(
        checked_add(checked_mul(g_.groups, per_group, "im2col_pixels packed weights"), g_.K, "im2col_pixels packed weights"));
  }
  // Per channel block, panels of NR output channels, k-major: panel[p*NR + j] = W(k0 + j, p); a block
  // starts a panel of its own, so blocks need not be whole panels.
  void pack_weights(const float* w, const float* bias, float* packed) const override {
    for (int64_t grp = 0; grp < g_.groups; ++grp)
      for (int64_t mc = 0; mc < b_.m_chunks; ++mc) {
        const int64_t k0 = mc * b_.channels, nch = std::min(b_.channels, g_.Kg - k0);
        pack_a_panels(kernel_.transpose_rows, w + (grp * g_.Kg + k0) * kdim_, kdim_, nch, kdim_, kernel_.blocking.nr,
                      packed + (grp * b_.m_chunks + mc) * block_floats());
      }
    float* b = packed + g_.groups * b_.m_chunks * block_floats();
    for (int64_t k = 0; k < g_.K; ++k) b[k] = bias ? bias[k] : 0.0f;
  }
  void execute(const float* x, const float* packed, float* y, void* workspace, const ThreadPool& pool,
               const float* residual = nullptr) const override {
    const Geometry& g = g_;
    const int mr = kernel_.blocking.mr;
    const int64_t PQ = g.P * g.Q, pixel_panels = ceil_div(PQ, mr);
    const float* bias = packed + g.groups * b_.m_chunks * block_floats();
    const TaskGrid<4> tasks = grid();
    const ThreadScratch scratch_of = scratch();
    const ScratchLayout layout = scratch_layout(g, b_, mr);
    // Clamp activations (and the residual) in the transposes' registers, where the kernel has them.
    TileFuse fuse{};
    const bool fused = epilogue_.active() && kernel_.transpose_fused && tile_fuse_of(epilogue_.params, fuse);
    pool.for_each(tasks.tasks(), [&](int64_t task, int slot) {
      const auto [n, grp, mc, nc] = tasks(task);
      const Range block = run_of(pixel_panels, b_.n_chunks, nc);
      const int64_t n0 = block.begin * mr, npix = std::min(block.end * mr, PQ) - n0;
      const int64_t k0 = mc * b_.channels, nch = std::min(b_.channels, g.Kg - k0);
      const float* xg = x + (n * g.C + grp * g.Cg) * g.H * g.W;
      const float* w = packed + (grp * b_.m_chunks + mc) * block_floats();
      float* a_pack = scratch_of.of<float>(workspace, slot);
      PixelRun* runs = at_offset<PixelRun>(a_pack, layout.pack);
      float* line = at_offset<float>(runs, layout.runs);
      const float** rows = at_offset<const float*>(line, layout.line);
      float* acc = at_offset<float>(rows, layout.rows);
      float* stage = at_offset<float>(acc, layout.acc);
      const int64_t ldacc = acc_ld(nch), ldst = stage_ld(npix);
      const float* bias_g = bias + grp * g.Kg + k0;
      if (b_.implicit)
        accumulate_implicit(xg, w, bias_g, n0, npix, nch, rows, acc, ldacc);
      else
        accumulate_packed(xg, w, bias_g, n0, npix, nch, a_pack, runs, line, acc, ldacc);
      // acc [pixels x channels] into y's [channels x pixels], 16 pixels at a time: straight into y, or
      // through the stage when the epilogue follows (a residual that is y is read before y is written).
      const int64_t out_offset = (n * g.K + grp * g.Kg + k0) * PQ + n0;
      if (fused) {  // the post-ops on each row as it is transposed (a residual element is read just
                    // before the same element of y is written: it may be y)
        TileFuse f = fuse;
        for (int64_t r0 = 0; r0 < npix; r0 += 16) {
          f.residual = residual ? residual + out_offset + r0 : nullptr;
          kernel_.transpose_fused(acc + r0 * ldacc, ldacc, int(std::min<int64_t>(16, npix - r0)), nch, y + out_offset + r0,
                                  PQ, f);
        }
        return;
      }
      const bool staged = epilogue_.active();  // as b_.staged: the planner's epilogue is the context's
      float* to = staged ? stage : y + out_offset;
      const int64_t ld_to = staged ? ldst : PQ;
      for (int64_t r0 = 0; r0 < npix; r0 += 16)
        kernel_.transpose_rows(acc + r0 * ldacc, ldacc, int(std::min<int64_t>(16, npix - r0)), nch, to + r0, ld_to);
      if (staged)
        epilogue_.apply_from(stage, ldst, y + out_offset, residual ? residual + out_offset : nullptr, PQ, nch, npix);
    });
  }
  WorkCounts work() const override {
    const int mr = kernel_.blocking.mr;
    const int64_t PQ = g_.P * g_.Q;
    WorkCounts w;
    // What the tiles compute, padding included: whole 7-pixel rows, each block's channels in NR
    // panels (a last panel of half_nr channels or fewer runs half-width).
    const int64_t last = g_.Kg - (b_.m_chunks - 1) * b_.channels;
    const double columns = double(b_.m_chunks - 1) * double(tile_columns(b_.channels, kernel_, b_.implicit)) +
                           double(tile_columns(last, kernel_, b_.implicit));
    w.gemm_flops = 2.0 * double(g_.N * g_.groups) * double(round_up(PQ, mr)) * columns * double(kdim_);
    w.gemm_m = double(PQ), w.gemm_n = double(g_.Kg), w.gemm_k = double(kdim_);
    // The lowering priced as im2col's, plus the transpose of every output (about one packed element
    // each, measured on 7x7 and 14x14 1x1 layers); except that where im2col copies whole rows (1x1)
    // this gathers 7 floats of each, priced as a flat copy, and where im2col gathers strided runs
    // of up to 32 pixels this gathers runs of 7, priced at 2.5 times im2col's. At im2col's prices the
    // planner took this on 14x14 outputs where im2col measured 1.05-1.4x faster (AVX-512 Xeon, 2
    // threads: 1x1 576->96, 384->64, 192->64 at batch 1 and 8; 1x1/s2 512->1024 and 256->512 into
    // 14x14); on 7x7 outputs it stays ahead (1.04-1.2x), as the estimate still says.
    const double lowering = g_.is_pointwise() ? 1.0 : flat_packing(g_) ? lowering_cost(g_) : 2.5 * lowering_cost(g_);
    const double lowered = b_.implicit ? 0.0 : double(kdim_) * double(PQ) * lowering;
    w.pack_elements = double(g_.N * g_.groups * b_.m_chunks) * lowered + double(g_.N * g_.K * PQ);
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) + double(g_.K * kdim_));
    w.parallel_tasks = double(grid().tasks());
    return w;
  }

 private:
  // The accumulator [pixels x channels] of one block, from the bias (a row of it per pixel: no pass
  // over the outputs later), plus lowered(x) x W on the packed tiles: the block's pixels packed per
  // depth block by im2col's gather (1x1: row copies), then the macro-kernel.
  void accumulate_packed(const float* xg, const float* w, const float* bias_g, int64_t n0, int64_t npix, int64_t nch,
                         float* a_pack, PixelRun* runs, float* line, float* acc, int64_t ldacc) const {
    const int mr = kernel_.blocking.mr, nr = kernel_.blocking.nr;
    const int64_t PQ = g_.P * g_.Q;
    const int64_t nruns = pointwise_ ? 0 : pixel_runs(g_, n0, npix, runs);
    for (int64_t i = 0; i < npix; ++i) std::copy(bias_g, bias_g + nch, acc + i * ldacc);
    for (int64_t p0 = 0; p0 < kdim_; p0 += b_.kc) {
      const int64_t kc = std::min(b_.kc, kdim_ - p0);
      const int64_t panel_stride = pointwise_ ? kc * mr : im2col_panel_stride(kc, mr);
      if (pointwise_)
        kernel_.pack_b(xg + p0 * PQ + n0, PQ, kc, npix, mr, a_pack);
      else
        pack_im2col_(g_, xg, p0, kc, runs, nruns, npix, mr, panel_stride, line, a_pack);
      gemm_macro_kernel(kernel_, npix, nch, kc, a_pack, panel_stride, w + p0 * nr, kdim_ * nr, acc, ldacc, true,
                        nullptr, nullptr, /*b_streams=*/true);
    }
  }
  // The same accumulator on the implicit tiles: each pixel's first tap in rows[], its taps at
  // offsets_ from it (the input has no padding: the planner's padded copy when the problem had some).
  void accumulate_implicit(const float* xg, const float* w, const float* bias_g, int64_t n0, int64_t npix, int64_t nch,
                           const float** rows, float* acc, int64_t ldacc) const {
    const int mr = kernel_.blocking.mr, nr = kernel_.blocking.nr;
    // Whole tiles: the rows past the block's last pixel repeat it (computed, never stored).
    const int64_t tiles = ceil_div(npix, int64_t(mr));
    for (int64_t i = 0; i < tiles * mr; ++i) {
      const int64_t q = n0 + std::min(i, npix - 1), oh = q / g_.Q, ow = q % g_.Q;
      rows[i] = xg + oh * g_.stride_h * g_.W + ow * g_.stride_w;
      std::copy(bias_g, bias_g + nch, acc + i * ldacc);
    }
    for (int64_t p0 = 0; p0 < kdim_; p0 += b_.kc) {
      const int64_t kc = std::min(b_.kc, kdim_ - p0);
      // Each kc x NR micro-panel of weights stays in cache (L2 at AVX-512's 512 x 48) while it meets
      // every pixel tile (interleaved on the Xeon at KC 128: 0.99-1.03x the order that keeps a
      // tile's taps for every panel instead).
      for (int64_t j0 = 0; j0 < nch; j0 += nr) {
        const ImplicitUkernelFn tile = implicit_tile(std::min<int64_t>(nr, nch - j0));
        const float* wp = w + (j0 / nr) * kdim_ * nr + p0 * nr;
        // The next micro-panel (the next panel of this depth block, or the next block's first) comes
        // into L2 while this one's tiles run (next_panel_slice): in a network the weights arrive from
        // memory, and the panels lie a whole panel's depth apart, each too short a stream for the
        // hardware prefetchers. With 9.4 MiB of weights from memory 1.08-1.17x; weights already in
        // cache 0.98-1.00x (as slices before each tile; in the kernel's loop 0.92-0.94x more).
        const bool last_panel = j0 + nr >= nch;
        const int64_t next_p0 = last_panel ? p0 + kc : p0;
        const float* next_panel = next_p0 >= kdim_ ? nullptr
                                  : last_panel     ? w + next_p0 * nr
                                                   : wp + kdim_ * nr;
        const int64_t next_lines = next_panel ? ceil_div(std::min(b_.kc, kdim_ - next_p0) * nr, int64_t(16)) : 0;
        for (int64_t t = 0; t < tiles; ++t)
          tile(kc, rows + t * mr, offsets_.data() + p0, wp, acc + t * mr * ldacc + j0, ldacc,
               next_panel_slice(next_panel, next_lines, t, tiles, kc));
      }
    }
  }
  // The implicit kernel of the fewest vectors that covers `columns` (<= NR) channels.
  ImplicitUkernelFn implicit_tile(int64_t columns) const {
    return kernel_.implicit[ceil_div(columns, int64_t(kernel_.half_nr)) - 1];
  }
  // One channel block's packed weights (its channels rounded up to whole panels).
  int64_t block_floats() const { return packed_a_floats(b_.channels, kdim_, kernel_.blocking.nr); }
  ThreadScratch scratch() const { return ThreadScratch(scratch_layout(g_, b_, kernel_.blocking.mr).total()); }
  // Tasks: (image, group, channel block, pixel block); neighbouring tasks share their weights.
  TaskGrid<4> grid() const { return task_grid(g_.N, g_.groups, b_.m_chunks, b_.n_chunks); }

  Geometry g_;
  const SgemmKernel& kernel_;
  PackIm2colFn pack_im2col_;
  int threads_;
  Blocking b_;
  int64_t kdim_;
  bool pointwise_;
  std::vector<int32_t> offsets_;  // implicit: the taps' distances from a pixel's first tap
};

// The blocking of a pixel-major plan under ctx's budget, beside `extra` bytes of the workspace (the
// padded copy), or false (with the reason declined).
bool choose_blocking(const Geometry& g, const PlanContext& ctx, const SgemmKernel& kernel, bool implicit,
                     std::size_t extra, const char* solver, Proposals& out, Blocking& b) {
  const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
  const int64_t PQ = g.P * g.Q;
  b.kc = std::min(kernel.blocking.kc, g.Cg * g.R * g.S);
  b.staged = ctx.epilogue.active();
  b.implicit = implicit;
  const int half = kernel.half_nr;
  const int64_t pixel_panels = ceil_div(PQ, mr), channel_panels = ceil_div(g.Kg, nr);
  // Blocks of at most kMaxAccumulator floats (with the packed path a block holds at most the
  // image's 256 pixels; its packed depth block, 256 x 512 floats at AVX-512's KC, and the largest
  // accumulator fill a 1 MiB L2 between them, and KC 512 still ran faster: see sgemm_kernel.cpp),
  // cut so that the threads' rounds of tasks compute the fewest padded products and pack the fewest
  // pixels; at equal cost, fewer tasks.
  const int64_t images = g.N * g.groups;
  const double pack_cost = implicit ? 0.0 : g.is_pointwise() ? 16.0 : flat_packing(g) ? 32.0 : 64.0;
  double best = 1e300;
  b.m_chunks = 1, b.n_chunks = 1;
  // A bounded search (hostile shapes must not make planning slow): up to 9 pixel blocks (more when
  // a large image needs them to keep the accumulator in bounds), and from the fewest channel blocks
  // whose accumulator fits beside the narrowest of those, 64 more.
  const int64_t n_hi = std::min(pixel_panels, std::max<int64_t>(9, ceil_div(PQ * half, kMaxAccumulator)));
  const int64_t narrowest = ceil_div(pixel_panels, n_hi) * mr;
  const int64_t m_lo = ceil_div(channel_panels, std::max<int64_t>(1, kMaxAccumulator / (narrowest * nr)));
  for (int64_t m = m_lo; m <= std::min(channel_panels, m_lo + 64); ++m)
    for (int64_t n = 1; n <= n_hi; ++n) {
      // m blocks of whole half-width tiles: 512 channels in two blocks of 256 (5 panels of 48 and one
      // of 16), not of 288 and 224.
      const int64_t block = round_up(ceil_div(g.Kg, m), int64_t(half));
      if (ceil_div(g.Kg, block) < m) continue;  // fewer blocks than m: another m covers it
      if (ceil_div(pixel_panels, n) * mr * block > kMaxAccumulator && n < n_hi) continue;
      const int64_t tasks = images * m * n, rounds = ceil_div(tasks, int64_t(ctx.threads));
      // Per unit of depth, a task's products (pixels x channels), packing its pixels (16 products
      // per pixel for a row copy, 32 for a flat copy, 64 for a strided gather) and streaming its
      // channels' weights from L3 (about 16 products per channel: a block of one 7-pixel panel
      // waits on its weights).
      // The implicit tiles also pay their broadcasts per panel (a one-vector tile is load-bound at
      // about half the FMA rate): wide channel blocks, whose taps are read once for more panels.
      const double pixels = double(ceil_div(pixel_panels, n) * mr),
                   channels = double(tile_columns(block, kernel, implicit)) +
                              (implicit ? 16.0 * double(ceil_div(block, int64_t(nr))) : 0.0);
      const double cost = double(rounds) * (pixels * channels + pack_cost * pixels + 16.0 * channels) *
                          (1.0 + 1e-3 * double(tasks));
      if (cost < best) best = cost, b.m_chunks = m, b.n_chunks = n;
    }
  b.pixels = ceil_div(pixel_panels, b.n_chunks) * mr;
  b.channels = round_up(ceil_div(g.Kg, b.m_chunks), int64_t(half));
  b.m_chunks = ceil_div(g.Kg, b.channels);
  auto bytes = [&](const Blocking& blk) {
    return ThreadScratch(scratch_layout(g, blk, mr).total(), extra).total(ctx.threads);
  };
  // Under a tight budget, narrower pixel blocks (the accumulator and the packed block shrink with them).
  while (bytes(b) > ctx.workspace_limit && b.pixels > mr) {
    b.n_chunks = ceil_div(pixel_panels, b.pixels / mr - 1);
    b.pixels = ceil_div(pixel_panels, b.n_chunks) * mr;
  }
  while (bytes(b) > ctx.workspace_limit && b.channels > half) {
    b.channels = round_up(b.channels / 2, int64_t(half));
    b.m_chunks = ceil_div(g.Kg, b.channels);
  }
  if (bytes(b) > ctx.workspace_limit) {
    out.decline(solver, workspace_too_small(bytes(b), ctx.workspace_limit));
    return false;
  }
  return true;
}

// Both pixel-major solvers need channels to fill the vectors.
bool enough_channels(const Geometry& g, const char* solver, Proposals& out) {
  if (g.Kg < kMinChannels) {
    out.decline(solver, "fewer than " + std::to_string(kMinChannels) +
                            " output channels per group: the channel vectors would be mostly padding");
    return false;
  }
  return true;
}

}  // namespace

void propose_im2col_pixels(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  if (ctx.isa != Isa::Avx512) {
    // im2col's 16- and 8-pixel panels, with their half-width tails, pad these images little: the
    // pixel-major tiles measured 0.76-0.97x of im2col with AVX2 (Xeon, 7x7-14x14 layers).
    out.decline("im2col_pixels", std::string("AVX-512 only (") + isa_name(ctx.isa) +
                                     ": im2col's narrower pixel panels waste as little)");
    return;
  }
  if (!enough_channels(g, "im2col_pixels", out)) return;
  if (g.P * g.Q > kMaxImagePixels) {
    out.decline("im2col_pixels", std::to_string(g.P) + "x" + std::to_string(g.Q) + " outputs (more than " +
                                     std::to_string(kMaxImagePixels) + " pixels: im2col's pixel panels run faster)");
    return;
  }
  const SgemmKernel& kernel = sgemm_pixel_kernel(ctx.isa);
  Blocking b;
  if (choose_blocking(g, ctx, kernel, /*implicit=*/false, 0, "im2col_pixels", out, b))
    out.add(std::make_unique<Im2colPixelsConv>(g, kernel, ctx.threads, b));
}

void propose_im2col_implicit(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  if (ctx.isa < Isa::Avx2) {
    out.decline("im2col_implicit", std::string("AVX2 or AVX-512 (") + isa_name(ctx.isa) +
                                       ": im2col's 8-pixel panels waste as little, and SSE2 has 16 registers)");
    return;
  }
  if (!enough_channels(g, "im2col_implicit", out)) return;
  const SgemmKernel& kernel = sgemm_implicit_kernel(ctx.isa);
  const bool strided = g.stride_h > 1 || g.stride_w > 1;
  const int64_t max_pixels = strided ? kMaxImplicitPixelsStrided : kMaxImplicitPixels;
  if (g.P * g.Q > max_pixels) {
    out.decline("im2col_implicit", std::to_string(g.P) + "x" + std::to_string(g.Q) + " outputs (more than " +
                                       std::to_string(max_pixels) + " pixels" + (strided ? ", strided" : "") +
                                       ": im2col's packed panels run faster)");
    return;
  }
  if (g.R == 1 && g.S == 1) {
    out.decline("im2col_implicit", "1x1 kernel (im2col_pixels packs its rows as cheaply)");
    return;
  }
  // Where 7-pixel tiles pad the image more than im2col's pixel panels do (8x8: 70 for 64 pixels,
  // against two whole 32-pixel panels), im2col ran 1.1-1.2x faster (Xeon, 1x3 on 8x8, batch 1 and 8).
  const int64_t implicit_pixels = round_up(g.P * g.Q, int64_t(kernel.blocking.mr));
  const int64_t im2col_pixels = gemm_columns(g.P * g.Q, sgemm_kernel(ctx.isa));
  if (implicit_pixels > im2col_pixels) {
    out.decline("im2col_implicit", std::to_string(g.P * g.Q) + " output pixels pad to " +
                                       std::to_string(implicit_pixels) + " in " +
                                       std::to_string(kernel.blocking.mr) + "-pixel tiles, to " +
                                       std::to_string(im2col_pixels) + " in im2col's panels");
    return;
  }
  // With padding, the kernel reads a zero-padded copy of the input (the planner's padded copy).
  const bool padded = g.pad_t || g.pad_b || g.pad_l || g.pad_r;
  const Geometry inner = padded ? padded_copy_geometry(g) : g;
  // Offsets within one group's image are int32.
  const int64_t last_tap = ((inner.Cg - 1) * inner.H + (inner.R - 1) * inner.dil_h) * inner.W + (inner.S - 1) * inner.dil_w;
  if (inner.Cg * inner.H * inner.W > INT32_MAX || last_tap > INT32_MAX) {
    out.decline("im2col_implicit", "an input image of more than 2^31 floats per group (offsets are 32-bit)");
    return;
  }
  Blocking b;
  const std::size_t copy = padded ? padded_copy_bytes(g) : 0;  // the wrapper's, ahead of the scratch
  if (!choose_blocking(inner, ctx, kernel, /*implicit=*/true, copy, "im2col_implicit", out, b)) return;
  auto impl = std::make_unique<Im2colPixelsConv>(inner, kernel, ctx.threads, b);
  if (padded)
    out.add(wrap_padded_copy(g, std::move(impl)));
  else
    out.add(std::move(impl));
}

}  // namespace fastconv::detail
