// Backward-weights: dw[k, c, r, s] = sum_{n, p, q} dy[n, k, p, q] * x[n, c, p*sh - pt + r*dh, q*sw - pl + s*dw].
//
// Reproducibility: every implementation splits the work over disjoint parts of dw only (groups,
// blocks of output channels, blocks of dw's columns), never inside a sum; each element of dw is
// summed over blocks of pixels fixed by the problem (PixelBlocks: up to kPixelBlock pixels of an
// image, or whole small images; independent of threads and of the workspace limit) in one fixed
// order, the sliced GEMM's slices added in slice order. So dw is bitwise the same for any thread
// count and any budget.
#include "backward/backward_weights.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/isa_dispatch.hpp"
#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "backward/dot_kernels.hpp"
#include "direct/direct_kernels.hpp"

namespace fastconv::detail {

namespace {
// db[k]: kSumLanes independent sums (lane l takes the pixels i = l mod kSumLanes of each image),
// added in a fixed tree: one chain of dependent double adds would cost 4 cycles a pixel, as much as
// a 1x1 layer's GEMM. Each lane sums kFloatSteps pixels in float before adding them in double (the
// conversions cost more than the adds).
float bias_of_channel(const Geometry& g, const float* dy, int64_t k) {
  constexpr int kSumLanes = 16, kFloatSteps = 8;
  const int64_t PQ = g.P * g.Q;
  double lane[kSumLanes] = {};
  for (int64_t n = 0; n < g.N; ++n) {
    const float* d = dy + (n * g.K + k) * PQ;
    int64_t i = 0;
    for (; i + kSumLanes * kFloatSteps <= PQ; i += kSumLanes * kFloatSteps) {
      float part[kSumLanes] = {};
      for (int step = 0; step < kFloatSteps; ++step)
        for (int l = 0; l < kSumLanes; ++l) part[l] += d[i + step * kSumLanes + l];
      for (int l = 0; l < kSumLanes; ++l) lane[l] += double(part[l]);
    }
    for (; i + kSumLanes <= PQ; i += kSumLanes)
      for (int l = 0; l < kSumLanes; ++l) lane[l] += double(d[i + l]);
    for (int l = 0; i + l < PQ; ++l) lane[l] += double(d[i + l]);
  }
  for (int width = kSumLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
  return float(lane[0]);
}
}  // namespace

void bias_gradient(const Geometry& g, const float* dy, float* db, const ThreadPool& pool) {
  if (!db) return;
  pool.for_each(g.K, [&](int64_t k, int) { db[k] = bias_of_channel(g, dy, k); });
}

namespace {

// Pixels summed by one microkernel call: the depth of the GEMM blocks. Fixed, so the order of the
// sums is too.
constexpr int64_t kPixelBlock = 256;
// Widest block of dw columns lowered at once per task (the B block: kPixelBlock x this, 1 MiB).
constexpr int64_t kMaxColumns = 1024;

// The blocks of pixels the GEMM sums over, in order: up to kPixelBlock pixels of one image or, where
// an image has half that or fewer, as many whole images as fit. (Deep layers on 4x4 to 7x7 images:
// a block per image loaded and stored all of dw for 16 to 49 multiply-adds per element.)
struct PixelBlock {
  int64_t n0, images;  // images [n0, n0 + images)
  int64_t p0, pb;      // pixels [p0, p0 + pb) of each
};
class PixelBlocks {
 public:
  explicit PixelBlocks(const Geometry& g) : N_(g.N), PQ_(g.P * g.Q) {
    if (2 * PQ_ <= kPixelBlock) {
      images_ = kPixelBlock / PQ_, per_image_ = 1, count_ = ceil_div(N_, images_);
    } else {
      images_ = 1, per_image_ = ceil_div(PQ_, kPixelBlock), count_ = N_ * per_image_;
    }
  }
  int64_t count() const { return count_; }
  PixelBlock operator[](int64_t b) const {
    if (images_ > 1) return {b * images_, std::min(images_, N_ - b * images_), 0, PQ_};
    const int64_t p0 = b % per_image_ * kPixelBlock;
    return {b / per_image_, 1, p0, std::min(kPixelBlock, PQ_ - p0)};
  }

 private:
  int64_t N_, PQ_, images_ = 1, per_image_ = 1, count_ = 0;
};

struct WeightsBlocking {
  int64_t m_chunk, m_chunks;  // output channels per task (whole MR panels)
  int64_t n_chunk, n_chunks;  // dw columns per task (whole NR panels)
  int64_t slices = 1;         // runs of pixel blocks summed apart, then added in order (see weight_slices)
};

// Slices: the pixel blocks of all images, in order, cut into `slices` runs. Each run is summed into
// its own copy of dw (the first into dw itself, the others into the workspace), then the copies are
// added in slice order. The threads then share out the reduction too, without lowering anything
// twice: layers whose dw is small next to their pixels (stems, early layers, batches) have no other
// split that keeps both threads busy. The count comes from the problem alone, never from the threads
// or the budget, so the bits do not either.
constexpr int64_t kMaxSlices = 8;
constexpr double kMaxSliceCopiesBytes = 16.0 * 1024 * 1024;
int64_t weight_slices(const Geometry& g) {
  const double blocks = double(PixelBlocks(g).count());
  const double dw_bytes = double(g.K) * double(g.Cg * g.R * g.S) * sizeof(float);
  int64_t slices = int64_t(std::min<double>(kMaxSlices, std::floor(blocks / 2)));  // two blocks a slice at least
  while (slices > 1 && double(slices - 1) * dw_bytes > kMaxSliceCopiesBytes) --slices;
  return std::max<int64_t>(slices, 1);
}
std::size_t slice_copies_bytes(const Geometry& g, int64_t slices) {
  return align_up(checked_mul(std::size_t(slices - 1), checked_mul(std::size_t(g.K), std::size_t(g.Cg * g.R * g.S),
                                                                  "backward-weights slices"), "backward-weights slices") *
                  sizeof(float));
}

// The row buffer through which lower_columns goes: 16 lowered rows of a pixel block.
constexpr int64_t kLoweredRows = 16;
std::size_t lowered_rows_bytes() { return align_up(std::size_t(kLoweredRows * kPixelBlock) * sizeof(float)); }

// Per thread: the packed dy rows (A), the lowered columns (B) and the row buffer of the lowering.
std::size_t gemm_thread_bytes(const WeightsBlocking& b, int mr, int nr) {
  return align_up(std::size_t(round_up(b.m_chunk, mr) * kPixelBlock) * sizeof(float)) +
         align_up(std::size_t(round_up(b.n_chunk, nr) * kPixelBlock) * sizeof(float)) + lowered_rows_bytes();
}

// The workspace of the GEMM: the slices' copies of dw first, then each thread's scratch. The proposer
// fits the budget with it and the implementation carves its workspace with it, so they agree.
ThreadScratch gemm_scratch(const Geometry& g, const WeightsBlocking& b, int mr, int nr) {
  return ThreadScratch(gemm_thread_bytes(b, mr, nr), b.slices > 1 ? slice_copies_bytes(g, b.slices) : 0);
}

// o[i] = x[i * stride] for i in [a, b). The common strides are constants, so that the compiler
// vectorizes their loads with shuffles (a run-time stride gathers one float at a time).
void copy_strided(const float* x, int64_t stride, int64_t a, int64_t b, float* o) {
  switch (stride) {
    case 1: std::copy(x + a, x + b, o + a); return;
    case 2: for (int64_t i = a; i < b; ++i) o[i] = x[2 * i]; return;
    case 3: for (int64_t i = a; i < b; ++i) o[i] = x[3 * i]; return;
    case 4: for (int64_t i = a; i < b; ++i) o[i] = x[4 * i]; return;
    default: for (int64_t i = a; i < b; ++i) o[i] = x[i * stride];
  }
}

// Row j of col(X_g) (column j of dw: channel c, tap (r, s)) for pixels [p0, p0 + pb) of one image,
// contiguous in out: runs of an input row, zeros where the window reads padding.
void lower_row(const Geometry& g, const float* xg, int64_t p0, int64_t pb, int64_t j, float* out) {
  const int64_t RS = g.R * g.S, c = j / RS, r = j / g.S % g.R, s = j % g.S;
  const float* xc = xg + c * g.H * g.W;
  const Range valid = valid_outputs(g.Q, g.stride_w, s * g.dil_w - g.pad_l, g.W);
  for (int64_t p = p0; p < p0 + pb;) {
    const int64_t oh = p / g.Q, ow0 = p % g.Q, ow1 = std::min(g.Q, ow0 + (p0 + pb - p));
    float* o = out + (p - p0) - ow0;  // o[ow]: this output row's pixels
    const int64_t ih = oh * g.stride_h - g.pad_t + r * g.dil_h;
    if (ih < 0 || ih >= g.H) {
      std::fill(o + ow0, o + ow1, 0.0f);
    } else {
      const float* xr = xc + ih * g.W + s * g.dil_w - g.pad_l;
      const int64_t a = std::clamp(valid.begin, ow0, ow1), b = std::clamp(valid.end, a, ow1);
      std::fill(o + ow0, o + a, 0.0f);
      copy_strided(xr, g.stride_w, a, b, o);
      std::fill(o + b, o + ow1, 0.0f);
    }
    p += ow1 - ow0;
  }
}

// Lowers col(X_g)^T for a block's pixels (xg: its first image) and dw columns [j0, j0 + cols) into
// k-major B micro-panels (images * pb x nr each, columns past `cols` zero). Outside 1x1, 16 columns
// at a time are lowered as contiguous rows into `rows` and then transposed into the panel: the row
// copies are plain runs and the transpose runs in registers, where lowering straight into the panel
// would store one float per 128-byte panel row.
void lower_columns(const Geometry& g, TransposeRowsFn transpose, const float* xg, const PixelBlock& blk, int64_t j0,
                   int64_t cols, int nr, float* rows, float* dst) {
  const int64_t image = g.C * g.H * g.W, pb = blk.pb, kb = blk.images * pb;
  // 1x1, stride 1, no padding: the columns are the input's rows, a plain transpose.
  if (g.is_pointwise())
    return pack_a_panels(transpose, xg + j0 * g.H * g.W + blk.p0, g.H * g.W, cols, pb, nr, dst, blk.images, image);
  for (int64_t c0 = 0; c0 < cols; c0 += nr, dst += kb * nr) {
    const int64_t n = std::min<int64_t>(nr, cols - c0);
    // Columns past `cols` go through the transpose as zero rows: one fill per row, not per pixel.
    for (int64_t i = 0; i < nr; i += kLoweredRows) {
      const int64_t m = std::min<int64_t>(kLoweredRows, nr - i), lowered = std::clamp<int64_t>(n - i, 0, m);
      for (int64_t row = 0; row < lowered; ++row)
        for (int64_t img = 0; img < blk.images; ++img)
          lower_row(g, xg + img * image, blk.p0, pb, j0 + c0 + i + row, rows + row * kb + img * pb);
      std::fill(rows + lowered * kb, rows + m * kb, 0.0f);
      transpose(rows, kb, int(m), kb, dst + i, nr);
    }
  }
}

class BackwardWeightsGemm final : public BackwardWeightsImpl {
 public:
  BackwardWeightsGemm(const Geometry& g, const SgemmKernel& kernel, int threads, const WeightsBlocking& b)
      : g_(g), kernel_(kernel), transpose_(kernel.transpose_rows), threads_(threads), b_(b), kdim_(g.Cg * g.R * g.S) {}

  Algorithm algorithm() const override { return Algorithm::Im2col; }
  std::string name() const override {
    return std::string(b_.slices > 1 ? "bwd_weights_sliced_gemm_" : "bwd_weights_gemm_") +
           std::string(kernel_.name).substr(std::string("sgemm_ukernel_").size());
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "dY x col(X)^T per image and group, " << kernel_.name << ", " << kPixelBlock << " pixels per block, ";
    if (b_.slices > 1) s << "the pixel blocks in " << b_.slices << " slices summed apart and added in order, ";
    s << b_.m_chunk << " channels x " << b_.n_chunk << " columns of dw per task, "
      << g_.groups * b_.m_chunks * b_.n_chunks * b_.slices << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return scratch().total(threads_); }

  void execute_backward_weights(const float* x, const float* dy, float* dw, float* db, void* workspace,
                                const ThreadPool& pool) const override {
    const Geometry& g = g_;
    const int mr = kernel_.blocking.mr, nr = kernel_.blocking.nr;
    const int64_t PQ = g.P * g.Q;
    const std::size_t a_bytes = align_up(std::size_t(round_up(b_.m_chunk, mr) * kPixelBlock) * sizeof(float));
    const std::size_t b_bytes = align_up(std::size_t(round_up(b_.n_chunk, nr) * kPixelBlock) * sizeof(float));
    const ThreadScratch scratch = this->scratch();
    const PixelBlocks pixel_blocks(g);
    const int64_t dw_floats = g.K * kdim_;
    float* copies = reinterpret_cast<float*>(workspace);  // slices 1, 2, ... (slice 0 sums into dw)
    const TaskGrid<4> tasks = task_grid(g.groups, b_.m_chunks, b_.n_chunks, b_.slices);
    pool.for_each(tasks.tasks(), [&](int64_t task, int slot) {
      const auto [grp, mc, nc, slice] = tasks(task);
      const int64_t m0 = mc * b_.m_chunk, rows = std::min(b_.m_chunk, g.Kg - m0);
      const int64_t j0 = nc * b_.n_chunk, cols = std::min(b_.n_chunk, kdim_ - j0);
      const Range blocks = run_of(pixel_blocks.count(), b_.slices, slice);
      char* ws = scratch.of<char>(workspace, slot);
      float* a_pack = reinterpret_cast<float*>(ws);
      float* b_pack = reinterpret_cast<float*>(ws + a_bytes);
      float* rows_buf = reinterpret_cast<float*>(ws + a_bytes + b_bytes);
      float* c = (slice == 0 ? dw : copies + (slice - 1) * dw_floats) + (grp * g.Kg + m0) * kdim_ + j0;
      for (int64_t block = blocks.begin; block < blocks.end; ++block) {
        const PixelBlock blk = pixel_blocks[block];
        const int64_t kb = blk.images * blk.pb;
        const float* xg = x + (blk.n0 * g.C + grp * g.Cg) * g.H * g.W;
        const float* dyg = dy + (blk.n0 * g.K + grp * g.Kg + m0) * PQ;
        pack_a_panels(transpose_, dyg + blk.p0, PQ, rows, blk.pb, mr, a_pack, blk.images, g.K * PQ);
        lower_columns(g, transpose_, xg, blk, j0, cols, nr, rows_buf, b_pack);
        gemm_macro_kernel(kernel_, rows, cols, kb, a_pack, kb * mr, b_pack, kb * nr, c, kdim_, block > blocks.begin,
                          nullptr);
      }
    });
    if (b_.slices > 1) {
      constexpr int64_t kAddChunk = 16384;
      pool.for_each(ceil_div(dw_floats, kAddChunk), [&](int64_t chunk, int) {
        const int64_t e0 = chunk * kAddChunk, e1 = std::min(dw_floats, e0 + kAddChunk);
        for (int64_t sl = 1; sl < b_.slices; ++sl) {
          const float* part = copies + (sl - 1) * dw_floats;
          for (int64_t e = e0; e < e1; ++e) dw[e] += part[e];
        }
      });
    }
    bias_gradient(g, dy, db, pool);
  }

  WorkCounts work() const override {
    const GemmBlocking& bl = kernel_.blocking;
    const double PQ = double(g_.P * g_.Q);
    const PixelBlock first_block = PixelBlocks(g_)[0];  // the depth of the GEMM's blocks
    WorkCounts w;
    w.gemm_flops = 2.0 * double(g_.N * g_.groups) * double(round_up(g_.Kg, bl.mr)) * double(round_up(kdim_, bl.nr)) * PQ;
    w.gemm_m = double(g_.Kg), w.gemm_n = double(kdim_), w.gemm_k = double(first_block.images * first_block.pb);
    // Outside 1x1 the lowering copies runs of input rows (about the forward's packing), then
    // transposes them. The transposes (dy always, x for 1x1) run 16x16 blocks in registers on AVX-512
    // and 8x8 on AVX2: about half a packed element each; the portable one about two.
    const double transpose = kernel_.isa == Isa::Sse2 ? 2.0 : 0.5;
    w.pack_elements = (g_.is_pointwise() ? transpose : 1.0 + transpose) * double(g_.N * g_.groups * b_.m_chunks) * double(kdim_) * PQ +
                      transpose * double(g_.N * g_.groups * b_.n_chunks) * double(g_.Kg) * PQ;
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) +
                          double(2 * b_.slices - 1) * double(g_.K * kdim_));
    w.parallel_tasks = double(g_.groups * b_.m_chunks * b_.n_chunks * b_.slices);
    return w;
  }

 private:
  ThreadScratch scratch() const { return gemm_scratch(g_, b_, kernel_.blocking.mr, kernel_.blocking.nr); }

  Geometry g_;
  const SgemmKernel& kernel_;
  TransposeRowsFn transpose_;
  int threads_;
  WeightsBlocking b_;
  int64_t kdim_;
};

// Lanes of the direct kernel's accumulators: each lane sums its own pixels, the lanes are added in
// a fixed tree at the end.
constexpr int kLanes = 16;

class BackwardWeightsDirect final : public BackwardWeightsImpl {
 public:
  explicit BackwardWeightsDirect(const Geometry& g) : g_(g) {}
  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return g_.is_depthwise() ? "bwd_weights_direct_depthwise" : "bwd_weights_direct"; }
  std::string describe() const override {
    return "loops over pixels with " + std::to_string(kLanes) + " lane accumulators, one task per output channel (" +
           std::to_string(g_.K) + " tasks)";
  }
  std::size_t workspace_bytes() const override { return 0; }

  void execute_backward_weights(const float* x, const float* dy, float* dw, float* db, void*,
                                const ThreadPool& pool) const override {
    const Geometry& g = g_;
    pool.for_each(g.K, [&](int64_t k, int) {
      const int64_t grp = k / g.Kg;
      for (int64_t cg = 0; cg < g.Cg; ++cg)
        for (int64_t r = 0; r < g.R; ++r)
          for (int64_t s = 0; s < g.S; ++s) {
            float acc[kLanes] = {};
            const Range cols = valid_outputs(g.Q, g.stride_w, s * g.dil_w - g.pad_l, g.W);
            const Range rows = valid_outputs(g.P, g.stride_h, r * g.dil_h - g.pad_t, g.H);
            const int64_t len = cols.size();
            for (int64_t n = 0; n < g.N; ++n) {
              const float* xc = x + (n * g.C + grp * g.Cg + cg) * g.H * g.W;
              const float* dyk = dy + (n * g.K + k) * g.P * g.Q;
              for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
                const float* d = dyk + oh * g.Q + cols.begin;
                const float* xr = xc + (oh * g.stride_h - g.pad_t + r * g.dil_h) * g.W +
                                  cols.begin * g.stride_w - g.pad_l + s * g.dil_w;
                int64_t i = 0;
                if (g.stride_w == 1) {
                  for (; i + kLanes <= len; i += kLanes)
                    for (int l = 0; l < kLanes; ++l) acc[l] += d[i + l] * xr[i + l];
                } else {
                  for (; i + kLanes <= len; i += kLanes)
                    for (int l = 0; l < kLanes; ++l) acc[l] += d[i + l] * xr[(i + l) * g.stride_w];
                }
                for (int l = 0; i + l < len; ++l) acc[l] += d[i + l] * xr[(i + l) * g.stride_w];
              }
            }
            for (int width = kLanes / 2; width > 0; width /= 2)
              for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
            dw[((k * g.Cg + cg) * g.R + r) * g.S + s] = acc[0];
          }
    });
    bias_gradient(g, dy, db, pool);
  }

  WorkCounts work() const override {
    WorkCounts w;
    const double flops = 2.0 * double(g_.N * g_.K * g_.Cg * g_.R * g_.S) * double(g_.P * g_.Q);
    // Compiled for the baseline instruction set (plain loops the compiler vectorizes over the lanes).
    if (g_.is_depthwise())
      w.depthwise_flops = 2.0 * flops;
    else
      w.scalar_flops = flops;
    w.dram_bytes = 4.0 * (double(g_.N) * double(g_.input_image() + g_.output_image()) * double(g_.Cg > 1 ? 1 : g_.R));
    w.parallel_tasks = double(g_.K);
    return w;
  }

 private:
  Geometry g_;
};

// Without transposing anything: x is zero-padded to Hp x Wp and split into its sh x sw stride phases
// (plane (a, b) holds the padded pixels (i*sh + a, j*sw + b), Wq = ceil(Wp/sw) columns), and each
// row of dy is padded to Wq columns (zeros past Q). Then dw[k, c, r, s] is one dot product over the
// flat index f of dy_pad[k][f] and the phase plane ((r*dh) % sh, (s*dw) % sw) of c shifted by
// (r*dh / sh) rows and (s*dw / sw) columns: rows of dy against shifted windows, both contiguous. The
// dot-product tiles (dot_kernels.hpp) run over fixed chunks of f, images and chunks in a fixed
// order. The row padding costs (Wq - Q)/Q extra work. A NaN or Inf in x reaches every dw its window
// meets, including through the zeros of dy's row padding (0 * Inf = NaN).
constexpr int64_t kDotChunk = 1024;  // floats of f per tile call: 8 rows of A in L1

class BackwardWeightsDot final : public BackwardWeightsImpl {
 public:
  BackwardWeightsDot(const Geometry& g, const DotKernels& kernels, Isa isa, int64_t col_block)
      : g_(g), k_(kernels), isa_(isa), col_block_(col_block), kdim_(g.Cg * g.R * g.S), d_(dims(g)) {
    depthwise_ = g.Kg < 4;
    ma_ = depthwise_ ? 1 : kernels.ma, nb_ = depthwise_ ? 4 : kernels.nb;
  }
  struct Dims {
    int64_t hq, wq;    // a stride phase of the padded input
    int64_t row;       // floats of a padded dy row block: P * wq rounded up to kDotStep
    int64_t plane;     // floats per phase plane: the largest window shift plus a row block
    int64_t phases;    // sh * sw
  };
  static Dims dims(const Geometry& g) {
    Dims d;
    d.hq = ceil_div(g.H + g.pad_t + g.pad_b, g.stride_h), d.wq = ceil_div(g.W + g.pad_l + g.pad_r, g.stride_w);
    d.row = round_up(g.P * d.wq, kDotStep);
    const int64_t shift = (g.R - 1) * g.dil_h / g.stride_h * d.wq + (g.S - 1) * g.dil_w / g.stride_w;
    d.plane = round_up(std::max(shift + d.row, d.hq * d.wq), 16);
    d.phases = g.stride_h * g.stride_w;
    return d;
  }
  static std::size_t bytes(const Geometry& g) {
    const Dims d = dims(g);
    return align_up(std::size_t(g.C * d.phases * d.plane) * sizeof(float)) +
           align_up(std::size_t(g.K * d.row) * sizeof(float));
  }

  Algorithm algorithm() const override { return Algorithm::Im2col; }  // a GEMM of dot products
  std::string name() const override {
    return std::string(g_.is_depthwise() ? "bwd_weights_dot_depthwise__" : "bwd_weights_dot__") + isa_name(isa_);
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "dot products of dy rows with shifted windows of the padded input's " << d_.phases << " stride phase"
      << (d_.phases > 1 ? "s, " : ", ") << ma_ << "x" << nb_ << " tiles, "
      << kDotChunk << " floats per chunk, " << col_block_ << " column tiles per task, " << tasks() << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return bytes(g_); }

  void execute_backward_weights(const float* x, const float* dy, float* dw, float* db, void* workspace,
                                const ThreadPool& pool) const override {
    const Geometry& g = g_;
    const int64_t plane = d_.plane;
    float* xpad = static_cast<float*>(workspace);
    float* dypad = reinterpret_cast<float*>(static_cast<char*>(workspace) +
                                            align_up(std::size_t(g.C * d_.phases * plane) * sizeof(float)));
    const int64_t col_tiles = ceil_div(kdim_, nb_), blocks = ceil_div(col_tiles, col_block_);
    // Work units in contiguous runs per task: a task per unit costs more than a small unit.
    const int64_t copy_units = g.C + g.K, units = g.groups * blocks;
    const int64_t copy_tasks = std::min<int64_t>(copy_units, 8 * pool.threads());
    const int64_t tasks = std::min<int64_t>(units, 8 * pool.threads());
    for (int64_t n = 0; n < g.N; ++n) {
      // The padded phase planes of this image's channels, and its padded dy rows.
      pool.for_each(copy_tasks, [&](int64_t task, int) {
        for (int64_t t = task * copy_units / copy_tasks; t < (task + 1) * copy_units / copy_tasks; ++t)
          copy_unit(x, dy, n, t, xpad, dypad);
      });
      pool.for_each(tasks, [&](int64_t task, int) {
        for (int64_t u = task * units / tasks; u < (task + 1) * units / tasks; ++u)
          dot_unit(n, u / blocks, (u % blocks) * col_block_, std::min(col_tiles, (u % blocks + 1) * col_block_), xpad,
                   dypad, dw);
      });
    }
    bias_gradient(g, dy, db, pool);
  }

  // Channel t of image n (t < C: the phase planes of x; else row block t - C of dy).
  void copy_unit(const float* x, const float* dy, int64_t n, int64_t t, float* xpad, float* dypad) const {
    const Geometry& g = g_;
    const int64_t sh = g.stride_h, sw = g.stride_w, wq = d_.wq, row = d_.row, plane = d_.plane;
    if (t < g.C) {
      const float* src = x + (n * g.C + t) * g.H * g.W;
      for (int64_t a = 0; a < sh; ++a)
        for (int64_t b = 0; b < sw; ++b) {
          float* d = xpad + (t * d_.phases + a * sw + b) * plane;
          std::memset(d, 0, sizeof(float) * std::size_t(plane));
          // Phase columns j whose input column j*sw + b - pl lies in [0, W).
          const Range cols = valid_outputs(wq, sw, b - g.pad_l, g.W);
          for (int64_t i = 0; i < d_.hq; ++i) {
            const int64_t ih = i * sh + a - g.pad_t;
            if (ih < 0 || ih >= g.H) continue;
            const float* in = src + ih * g.W + b - g.pad_l;
            float* out = d + i * wq;
            if (sw == 1)
              std::memcpy(out + cols.begin, in + cols.begin, sizeof(float) * std::size_t(cols.size()));
            else
              for (int64_t j = cols.begin; j < cols.end; ++j) out[j] = in[j * sw];
          }
        }
    } else {
      const int64_t k = t - g.C;
      float* d = dypad + k * row;
      const float* src = dy + (n * g.K + k) * g.P * g.Q;
      std::memset(d, 0, sizeof(float) * std::size_t(row));
      for (int64_t p = 0; p < g.P; ++p) std::memcpy(d + p * wq, src + p * g.Q, sizeof(float) * std::size_t(g.Q));
    }
  }

  // Column tiles [t0, t1) of group grp, all its output channels, over image n.
  void dot_unit(int64_t n, int64_t grp, int64_t t0, int64_t t1, const float* xpad, const float* dypad, float* dw) const {
    const Geometry& g = g_;
    const int64_t sh = g.stride_h, sw = g.stride_w, wq = d_.wq, row = d_.row, plane = d_.plane;
    const DotTileFn tile = depthwise_ ? k_.tile1x4 : k_.tile;
    for (int64_t f0 = 0; f0 < row; f0 += kDotChunk) {
      const int64_t len = std::min(kDotChunk, row - f0);
      const bool accumulate = n > 0 || f0 > 0;
      for (int64_t k0 = 0; k0 < g.Kg; k0 += ma_) {
        const int64_t rows = std::min<int64_t>(ma_, g.Kg - k0);
        const float* a[8];
        for (int i = 0; i < ma_; ++i) a[i] = dypad + (grp * g.Kg + k0 + std::min<int64_t>(i, rows - 1)) * row + f0;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t j0 = t * nb_, cols = std::min<int64_t>(nb_, kdim_ - j0);
          const float* b[8];
          for (int j = 0; j < nb_; ++j) {
            const int64_t col = j0 + std::min<int64_t>(j, cols - 1);
            const int64_t c = col / (g.R * g.S), r = col / g.S % g.R, s = col % g.S;
            const int64_t dr = r * g.dil_h, ds = s * g.dil_w;
            b[j] = xpad + ((grp * g.Cg + c) * d_.phases + (dr % sh) * sw + ds % sw) * plane + dr / sh * wq + ds / sw + f0;
          }
          float* c = dw + (grp * g.Kg + k0) * kdim_ + j0;
          if (rows == ma_ && cols == nb_) {
            tile(len, a, b, c, kdim_, accumulate);
            continue;
          }
          // A partial tile: the same sums into a scratch tile, then the same add.
          float part[64];
          tile(len, a, b, part, nb_, false);
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j)
              c[i * kdim_ + j] = accumulate ? c[i * kdim_ + j] + part[i * nb_ + j] : part[i * nb_ + j];
        }
      }
    }
  }

  WorkCounts work() const override {
    WorkCounts w;
    // Measured on the suite (AVX-512, 2 cores): the tiles run at about half the GEMM microkernel's
    // rate (unaligned window loads: one per FMA row), the 1x4 tiles at a third of the depthwise
    // rate, and each tile call pays its horizontal sums, about 200 floats' worth of work.
    const double len = double(std::min(kDotChunk, d_.row));
    const double flops = 2.0 * double(g_.N * g_.groups) * double(round_up(g_.Kg, ma_)) *
                         double(round_up(kdim_, nb_)) * double(d_.row) * (depthwise_ ? 3.0 : 2.0) * (1.0 + 200.0 / len);
    if (!depthwise_) {
      w.gemm_flops = flops;
      w.gemm_m = double(g_.Kg), w.gemm_n = double(kdim_), w.gemm_k = len;
    } else {
      w.depthwise_flops = flops;
    }
    w.pack_elements = double(g_.N) * double(g_.C * d_.phases * d_.plane * (d_.phases > 1 ? 1.0 : 0.25) + 0.25 * double(g_.K * d_.row));
    w.dram_bytes = 4.0 * double(g_.N) * double(g_.input_image() + g_.output_image());
    // Each task (a block of columns) reads all its group's dy rows: past the L2 they come from
    // memory again per task (mobilenetv2_pw_1x1_16_96: 4.8 MB of dy read 6 times).
    const double dy_group_bytes = 4.0 * double(g_.Kg * d_.row);
    if (dy_group_bytes > double(1 << 20)) w.dram_bytes += double(g_.N) * double(tasks()) * dy_group_bytes;
    w.parallel_tasks = double(tasks());
    return w;
  }

 private:
  int64_t tasks() const { return g_.groups * ceil_div(ceil_div(kdim_, nb_), col_block_); }
  Geometry g_;
  const DotKernels& k_;
  Isa isa_;
  int64_t col_block_, kdim_;
  Dims d_;
  bool depthwise_;
  int64_t ma_, nb_;
};

// Depthwise (one input channel per group): one task per output channel, over all images in order.
// Per image the task copies its input channel into zero-padded rows split into the sw column phases
// (row ih, phase b, column j holds padded column j*sw + b; copy_phases) and reads its dy rows in
// place (or from a copy in rows of whole vectors at the very end of dy); then each tap (r, s) is the sum over the valid output rows of dy row . shifted x row,
// vectorised along the row (DepthwiseTapsFn, up to 4 taps of a kernel row per call). Each dw element
// has one owner task and one order of sums: bitwise the same for any thread count.
class BackwardWeightsDepthwise final : public BackwardWeightsImpl {
 public:
  BackwardWeightsDepthwise(const Geometry& g, const DotKernels& kernels, Isa isa, int threads)
      : g_(g), k_(kernels), isa_(isa), threads_(threads), d_(dims(g)), fused3x3_(g.R == 3 && g.S == 3),
        pack_rows_(direct_kernels(isa).pack), phases_(std::size_t(g.stride_w)), taps_3x3_(plan_taps_3x3(g, d_)) {
    for (int64_t b = 0; b < g.stride_w; ++b) phases_[std::size_t(b)] = int32_t(b);
  }
  struct Dims {
    int64_t wq;       // columns of one stride phase of a padded input row
    int64_t rowlen;   // floats per phase row: the widest shifted read of whole vectors
    int64_t qpad;     // floats per dy row: Q in whole vectors
  };
  static Dims dims(const Geometry& g) {
    Dims d;
    d.wq = ceil_div(g.W + g.pad_l + g.pad_r, g.stride_w);
    d.qpad = round_up(g.Q, kDepthwiseAlign);
    // Whole vectors: the phases are written a vector at a time (DirectKernels::pack).
    d.rowlen = round_up(std::max(d.wq, d.qpad + (g.S - 1) * g.dil_w / g.stride_w), kDepthwiseAlign);
    return d;
  }
  static std::size_t thread_bytes(const Geometry& g) {
    const Dims d = dims(g);
    return align_up(std::size_t(g.H * g.stride_w * d.rowlen) * sizeof(float)) +
           align_up(std::size_t(g.P * d.qpad) * sizeof(float));
  }

  Algorithm algorithm() const override { return Algorithm::Direct; }
  std::string name() const override { return std::string("bwd_weights_depthwise__") + isa_name(isa_); }
  std::string describe() const override {
    std::ostringstream s;
    s << "per output channel: dy rows against shifted rows of the zero-padded input (" << g_.stride_w
      << " column phase" << (g_.stride_w > 1 ? "s" : "") << "), " << k_.lanes << " lanes along the row, "
      << g_.K << " tasks";
    return s.str();
  }
  std::size_t workspace_bytes() const override { return ThreadScratch(thread_bytes(g_)).total(threads_); }

  void execute_backward_weights(const float* x, const float* dy, float* dw, float* db, void* workspace,
                                const ThreadPool& pool) const override {
    const Geometry& g = g_;
    const ThreadScratch scratch(thread_bytes(g));
    const std::size_t x_bytes = align_up(std::size_t(g.H * g.stride_w * d_.rowlen) * sizeof(float));
    const int64_t RS = g.R * g.S;
    pool.for_each(g.K, [&](int64_t k, int slot) {
      char* ws = scratch.of<char>(workspace, slot);
      float* xb = reinterpret_cast<float*>(ws);
      float* dyb = reinterpret_cast<float*>(ws + x_bytes);
      float* out = dw + k * RS;
      const int64_t c = k / g.Kg;  // its input channel
      if (fused3x3_) {
        float bias = 0.0f;  // db[k]: the kernel sums dy on its way
        for (int64_t n = 0; n < g.N; ++n) {
          const float* xc = x + (n * g.C + c) * g.H * g.W;
          float part[10];
          k_.taps3x3(taps_3x3(dy + (n * g.K + k) * g.P * g.Q, g.stride_w == 1 ? xc : copy_phases(xc, xb)), part);
          for (int j = 0; j < 9; ++j) out[j] = n > 0 ? out[j] + part[j] : part[j];
          bias = n > 0 ? bias + part[9] : part[9];
        }
        if (db) db[k] = bias;
        return;
      }
      for (int64_t n = 0; n < g.N; ++n) {
        // dy's rows are read in place (the lanes past Q are masked) unless the last row's whole
        // vectors would run past the end of dy.
        const float* dyk = dy + (n * g.K + k) * g.P * g.Q;
        const bool in_place = (n * g.K + k + 1) * g.P * g.Q + (d_.qpad - g.Q) <= g.N * g.K * g.P * g.Q;
        const int64_t ldy = in_place ? g.Q : d_.qpad;
        copy_phases(x + (n * g.C + c) * g.H * g.W, xb);
        if (!in_place) copy_dy_rows(dyk, dyb);
        const float* dyrows = in_place ? dyk : dyb;
        for (int64_t r = 0; r < g.R; ++r) {
          const Range rows = valid_outputs(g.P, g.stride_h, r * g.dil_h - g.pad_t, g.H);
          for (int64_t s0 = 0; s0 < g.S; s0 += kMaxDepthwiseTaps) {
            const int ns = int(std::min<int64_t>(kMaxDepthwiseTaps, g.S - s0));
            float part[kMaxDepthwiseTaps] = {};
            if (rows.size() > 0) {
              int64_t shift[kMaxDepthwiseTaps];
              for (int j = 0; j < ns; ++j) {
                const int64_t ds = (s0 + j) * g.dil_w;
                shift[j] = (ds % g.stride_w) * d_.rowlen + ds / g.stride_w;
              }
              const int64_t ih0 = rows.begin * g.stride_h - g.pad_t + r * g.dil_h;
              k_.taps[ns - 1](rows.size(), g.Q, dyrows + rows.begin * ldy, ldy,
                              xb + ih0 * g.stride_w * d_.rowlen, g.stride_h * g.stride_w * d_.rowlen, shift, part);
            }
            float* o = out + r * g.S + s0;
            for (int j = 0; j < ns; ++j) o[j] = n > 0 ? o[j] + part[j] : part[j];
          }
        }
      }
      // The bias in the same task: one pass over the threads fewer on these small layers.
      if (db) db[k] = bias_of_channel(g, dy, k);
    });
  }

  // The 3x3 kernel's operands for one image: x read in place at column stride 1, else from its
  // column phases (xb, after copy_phases); dy in place.
  Depthwise3x3 taps_3x3(const float* dyk, const float* xrows) const {
    Depthwise3x3 a = taps_3x3_;
    a.dy = dyk, a.x = xrows;
    return a;
  }
  // The same for every channel and image: planned once (the row ranges take divisions).
  static Depthwise3x3 plan_taps_3x3(const Geometry& g, const Dims& d) {
    const bool in_place = g.stride_w == 1;
    const int64_t pitch = in_place ? g.W : g.stride_w * d.rowlen;  // floats from one input row to the next
    Depthwise3x3 a;
    a.rows = g.P, a.width = g.Q, a.dy = nullptr, a.ldy = g.Q, a.x = nullptr, a.ldx = g.stride_h * pitch;
    for (int r = 0; r < 3; ++r) {
      const int64_t offset = r * g.dil_h - g.pad_t;
      const Range rows = valid_outputs(g.P, g.stride_h, offset, g.H);
      a.tap_row[r] = offset * pitch, a.row_begin[r] = rows.begin, a.row_end[r] = rows.end;
    }
    for (int s = 0; s < 3; ++s) {
      const int64_t ds = s * g.dil_w;
      if (in_place) {
        a.shift[s] = ds - g.pad_l, a.col_begin[s] = g.pad_l - ds, a.col_end[s] = g.W + g.pad_l - ds;
      } else {  // the phases hold the padding as zeros
        a.shift[s] = (ds % g.stride_w) * d.rowlen + ds / g.stride_w, a.col_begin[s] = 0, a.col_end[s] = g.Q;
      }
    }
    return a;
  }
  // x's rows into their column phases (row ih, phase b, column j: padded column j*sw + b; the
  // padding as zeros) with the direct algorithm's row packer: a vector at a time, masked edges.
  const float* copy_phases(const float* xc, float* xb) const {
    RowPack pk;
    pk.x = xc, pk.H = g_.H, pk.W = g_.W, pk.iy0 = 0, pk.rows = g_.H, pk.ix0 = -g_.pad_l, pk.sw = g_.stride_w;
    pk.phase = phases_.data(), pk.phases = g_.stride_w, pk.wph = d_.rowlen, pk.row_stride = g_.stride_w * d_.rowlen;
    pk.dst = xb;
    pack_rows_(pk);
    return xb;
  }

  // dy's rows of one channel into whole vectors (zeros past Q). Plain loops: the rows are short, a
  // memcpy or memset call each would cost more.
  void copy_dy_rows(const float* dyk, float* dyb) const {
    const Geometry& g = g_;
    for (int64_t p = 0; p < g.P; ++p) {
      const float* src = dyk + p * g.Q;
      float* o = dyb + p * d_.qpad;
      for (int64_t q = 0; q < g.Q; ++q) o[q] = src[q];
      for (int64_t q = g.Q; q < d_.qpad; ++q) o[q] = 0.0f;
    }
  }

  WorkCounts work() const override {
    WorkCounts w;
    // Whole vectors along each dy row; each call (up to 4 taps of a kernel row) pays its lane sums
    // and loop set-up, about 4 rows' worth.
    const double vec = double(k_.lanes);
    const double width = double(round_up(g_.Q, int64_t(k_.lanes)));
    const double calls = double(g_.R * ceil_div(g_.S, int64_t(kMaxDepthwiseTaps)));
    if (fused3x3_) {  // one reduction of nine vectors per image; only strided columns are copied
      w.depthwise_flops = 2.0 * double(g_.N * g_.K) * 9.0 * (double(g_.P) * width + 2.0 * vec);
      w.pack_elements = g_.stride_w > 1 ? 0.25 * double(g_.N * g_.K) * double(g_.H * g_.stride_w * d_.rowlen) : 0.0;
    } else {
      w.depthwise_flops = 2.0 * double(g_.N * g_.K) * double(g_.R * g_.S) * double(g_.P) * width +
                          2.0 * double(g_.N * g_.K) * calls * 4.0 * vec * double(kMaxDepthwiseTaps);
      w.pack_elements = 0.25 * double(g_.N * g_.K) * double(g_.H * g_.stride_w * d_.rowlen + g_.P * d_.qpad);
    }
    w.dram_bytes = 4.0 * double(g_.N) * double(g_.input_image() + g_.output_image());
    w.parallel_tasks = double(g_.K);
    return w;
  }

 private:
  Geometry g_;
  const DotKernels& k_;
  Isa isa_;
  int threads_;
  Dims d_;
  bool fused3x3_;  // all nine taps in one pass (DotKernels::taps3x3)
  RowPackFn pack_rows_;
  std::vector<int32_t> phases_;  // 0 .. stride_w - 1
  Depthwise3x3 taps_3x3_;        // without its dy and x
};

}  // namespace

// core/isa_dispatch.hpp: built on first use, only for an instruction set the CPU runs.
const DotKernels& dot_kernels(Isa isa) {
  return isa_filled_table<DotKernels, fill_dot_kernels_sse2, fill_dot_kernels_avx2, fill_dot_kernels_avx512>(
      isa, "backward dot");
}

void propose_backward_weights_dot(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const std::size_t need = BackwardWeightsDot::bytes(g);
  if (need > ctx.workspace_limit) {
    out.decline("bwd_weights_dot", workspace_too_small(need, ctx.workspace_limit) + " (padded copies of one image)");
    return;
  }
  // Column tiles per task: a few tasks per thread.
  const DotKernels& kernels = dot_kernels(ctx.isa);
  const int64_t col_tiles = ceil_div(g.Cg * g.R * g.S, g.Kg < 4 ? 4 : kernels.nb);
  const int64_t wanted = ctx.threads == 1 ? 1 : 4 * ctx.threads;
  const int64_t per_group = std::max<int64_t>(1, ceil_div(wanted, g.groups));
  const int64_t block = std::max<int64_t>(1, ceil_div(col_tiles, per_group));
  out.add(std::make_unique<BackwardWeightsDot>(g, dot_kernels(ctx.isa), ctx.isa, block));
}

namespace {
// The blocking of dY x col(X)^T with `slices` runs of pixel blocks: the widest per-task blocks the
// budget holds, then the split over (channels, columns, slices) that balances the threads. Empty
// when it fits, else why not.
std::string gemm_blocking(const Geometry& g, const PlanContext& ctx, const SgemmKernel& kernel, int64_t slices,
                          WeightsBlocking& b) {
  const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
  const int64_t kdim = g.Cg * g.R * g.S;
  b.slices = slices;
  b.m_chunk = round_up(g.Kg, mr);
  b.n_chunk = std::min(round_up(kdim, nr), kMaxColumns);
  auto bytes = [&] { return gemm_scratch(g, b, mr, nr).total(ctx.threads); };
  // Fit the budget: narrower column blocks first (each task lowers its own columns only), then
  // fewer channels per task (each block of channels lowers its columns again).
  while (bytes() > ctx.workspace_limit && b.n_chunk > nr) b.n_chunk = round_up(b.n_chunk / 2, nr);
  while (bytes() > ctx.workspace_limit && b.m_chunk > mr) b.m_chunk = round_up(b.m_chunk / 2, mr);
  if (bytes() > ctx.workspace_limit)
    return workspace_too_small(bytes(), ctx.workspace_limit) + (slices > 1 ? " (with the slices' copies of dw)" : "");
  // The split over (channels, columns) of dw for the threads: each block of channels lowers its
  // columns again and each block of columns packs its dy rows again, so pick the split with the
  // least time in rounds of whole tasks: packing (a lowered element about 60 flops' worth, twice that
  // outside 1x1) plus the padded GEMM, over the threads. Slices multiply the tasks without adding work.
  const int64_t max_m = b.m_chunk, max_n = b.n_chunk;
  double best = -1;
  for (int64_t mc = ceil_div(g.Kg, max_m); mc <= std::min<int64_t>(ceil_div(g.Kg, mr), 64); ++mc)
    for (int64_t nc = ceil_div(kdim, max_n); nc <= std::min<int64_t>(ceil_div(kdim, nr), 64); ++nc) {
      const int64_t m_chunk = round_up(ceil_div(g.Kg, mc), mr), n_chunk = round_up(ceil_div(kdim, nc), nr);
      const int64_t m_chunks = ceil_div(g.Kg, m_chunk), n_chunks = ceil_div(kdim, n_chunk);
      if (m_chunks != mc || n_chunks != nc) continue;  // the same split as a smaller count
      const double lowering = g.is_pointwise() ? 60.0 : 120.0;
      const double work = lowering * double(mc * kdim) + 60.0 * double(nc * g.Kg) +
                          2.0 * double(mc * m_chunk) * double(nc * n_chunk);
      const double tasks = double(g.groups * mc * nc * slices);
      const double rounds = std::ceil(tasks / double(ctx.threads));
      const double seconds = work / tasks * rounds;
      if (best < 0 || seconds < best) best = seconds, b.m_chunk = m_chunk, b.n_chunk = n_chunk;
    }
  b.m_chunks = ceil_div(g.Kg, b.m_chunk);
  b.n_chunks = ceil_div(kdim, b.n_chunk);
  return {};
}
}  // namespace

void propose_backward_weights_gemm(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const SgemmKernel& kernel = sgemm_kernel(ctx.isa);
  WeightsBlocking b;
  if (std::string why = gemm_blocking(g, ctx, kernel, 1, b); !why.empty()) return out.decline("bwd_weights_gemm", why);
  out.add(std::make_unique<BackwardWeightsGemm>(g, kernel, ctx.threads, b));
}

void propose_backward_weights_sliced_gemm(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  const int64_t slices = weight_slices(g);
  if (slices < 2)
    return out.decline("bwd_weights_sliced", "too few pixel blocks (" + std::to_string(PixelBlocks(g).count()) +
                                                 ") or too large a dw to sum in slices");
  const SgemmKernel& kernel = sgemm_kernel(ctx.isa);
  WeightsBlocking b;
  if (std::string why = gemm_blocking(g, ctx, kernel, slices, b); !why.empty())
    return out.decline("bwd_weights_sliced", why);
  out.add(std::make_unique<BackwardWeightsGemm>(g, kernel, ctx.threads, b));
}

void propose_backward_weights_depthwise(const Geometry& g, const PlanContext& ctx, Proposals& out) {
  if (g.Cg != 1 || g.groups == 1) {
    out.decline("bwd_weights_depthwise", "not depthwise (" + std::to_string(g.Cg) + " input channels per group)");
    return;
  }
  // Sizes from users: a padded channel of a huge layer must decline, not overflow.
  const auto d = BackwardWeightsDepthwise::dims(g);
  const double floats = double(g.H) * double(g.stride_w) * double(d.rowlen) + double(g.P) * double(d.qpad);
  if (double(ctx.threads) * floats * sizeof(float) > double(ctx.workspace_limit)) {
    out.decline("bwd_weights_depthwise", "workspace limit " + std::to_string(ctx.workspace_limit) +
                                             " bytes is below one padded channel per thread");
    return;
  }
  const std::size_t need = ThreadScratch(BackwardWeightsDepthwise::thread_bytes(g)).total(ctx.threads);
  if (need > ctx.workspace_limit) {
    out.decline("bwd_weights_depthwise", workspace_too_small(need, ctx.workspace_limit) + " (one padded channel per thread)");
    return;
  }
  out.add(std::make_unique<BackwardWeightsDepthwise>(g, dot_kernels(ctx.isa), ctx.isa, ctx.threads));
}

void propose_backward_weights_direct(const Geometry& g, const PlanContext&, Proposals& out) {
  out.add(std::make_unique<BackwardWeightsDirect>(g));
}

}  // namespace fastconv::detail
