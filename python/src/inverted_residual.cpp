// The inverted residual block in bands of output rows (inverted_residual.hpp). Each product is the
// library's packed GEMM (microkernel, macro-kernel and packing of src/gemm) on one thread, and the
// depthwise layer the direct convolution's depthwise stencil (its row packing and strips); only the
// loops around them are here.
#include "inverted_residual.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/checked.hpp"
#include "core/cpu.hpp"
#include "core/machine_model.hpp"
#include "core/parallel.hpp"
#include "core/partition.hpp"
#include "direct/direct_kernels.hpp"
#include "fastconv/fastconv.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv_python {
namespace {

using namespace fastconv::detail;

// Columns of B packed per block (as im2col's blocks: a KC x 512 block streams through L2).
constexpr int64_t kPixelBlock = 512;

// e and d of a band together in at most half the L2 (the packed B block and the weights beside
// them): on the Zen 5 (1 MiB L2), MobileNetV2 at batch 8 measured its first blocks at 0.48-0.73x the
// layer-by-layer time with 512 KiB bands, 0.70-0.85x with 256 KiB, and slower again with 1 MiB.
// FASTCONV_IR_BAND_KIB overrides it, for tuning.
int64_t band_floats() {
  static const int64_t floats = [] {
    const char* v = std::getenv("FASTCONV_IR_BAND_KIB");
    const long kib = v ? std::atol(v) : 0;
    const std::size_t bytes = kib > 0 ? std::size_t(kib) * 1024 : cpu_cache_sizes().l2 / 2;
    return std::max<int64_t>(int64_t(bytes / sizeof(float)), 16 * 1024);
  }();
  return floats;
}

int64_t round_up16(int64_t n) { return (n + 15) / 16 * 16; }

// C[m x n] (ldc) = A * B + bias, then the epilogue (its residual at `residual`, C's position and
// leading dimension); A packed in MR panels kdim deep, B row-major (ldb), packed a block at a time
// into b_pack. On the calling thread.
void gemm_rows(const SgemmKernel& kernel, const float* a, int64_t m, int64_t kdim, const float* b, int64_t ldb,
               int64_t n, float* c, int64_t ldc, const float* bias, const Epilogue& epilogue, const float* residual,
               float* b_pack) {
  const GemmBlocking& bl = kernel.blocking;
  for (int64_t n0 = 0; n0 < n; n0 += kPixelBlock) {
    const int64_t cols = std::min(kPixelBlock, n - n0);
    for (int64_t p0 = 0; p0 < kdim; p0 += bl.kc) {
      const int64_t kc = std::min(bl.kc, kdim - p0);
      const bool last = p0 + kc == kdim;
      kernel.pack_b(b + p0 * ldb + n0, ldb, kc, cols, bl.nr, b_pack);
      TileEpilogue post;
      if (last && epilogue.active()) post.epilogue = &epilogue;
      for (int64_t i0 = 0; i0 < m; i0 += bl.mc) {
        const int64_t rows = std::min(bl.mc, m - i0);
        if (last && residual) post.residual = residual + i0 * ldc + n0;
        gemm_macro_kernel(kernel, rows, cols, kc, a + (i0 / bl.mr) * kdim * bl.mr + p0 * bl.mr, kdim * bl.mr, b_pack,
                          kc * bl.nr, c + i0 * ldc + n0, ldc, p0 > 0, last ? bias + i0 : nullptr, &post);
      }
    }
  }
}

}  // namespace

InvertedResidual::InvertedResidual(const InvertedResidualShape& shape, const float* expand_w, const float* expand_b,
                                   const float* dw_w, const float* dw_b, const float* project_w,
                                   const float* project_b, int threads)
    : s_(shape), threads_(threads) {
  const InvertedResidualShape& s = s_;
  if (s.N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.K < 1 || s.E < 0)
    throw fastconv::Error("inverted residual: sizes must be positive (E: 0 or more)");
  // (The input's element count checked as it is multiplied: four bounded sizes still pass int64_t.)
  if (s.N > (1 << 20) || s.C > (1 << 16) || s.E > (1 << 16) || s.K > (1 << 16) || s.H > (1 << 16) || s.W > (1 << 16) ||
      checked_mul(checked_mul(s.N, s.C, "inverted residual input"), checked_mul(s.H, s.W, "inverted residual input"),
                  "inverted residual input") > (int64_t(1) << 40))
    throw fastconv::Error("inverted residual: sizes too large");
  if (s.stride != 1 && s.stride != 2) throw fastconv::Error("inverted residual: the depthwise stride must be 1 or 2");
  if (s.residual && (s.stride != 1 || s.K != s.C))
    throw fastconv::Error("inverted residual: a residual needs stride 1 and as many outputs as inputs");
  if (threads < 1 || threads > 4096) throw fastconv::Error("inverted residual: threads must be in [1, 4096]");
  if (!dw_w || !dw_b || !project_w || !project_b || (s.E && (!expand_w || !expand_b)))
    throw fastconv::Error("inverted residual: a weight or bias is missing");

  const Isa isa = best_isa();
  gemm_ = &sgemm_kernel(isa);
  direct_ = &direct_kernels(isa);
  expand_post_ = make_epilogue(s.expand_activation, isa);
  dw_post_ = make_epilogue(s.dw_activation, isa);
  float lo, hi;
  for (const Epilogue* e : {&expand_post_, &dw_post_})
    if (e->residual || !activation_clamp(e->params, lo, hi))
      throw fastconv::Error("inverted residual: the activations must be none, relu, relu6 or a clamp, got " +
                            fastconv::to_string(e->params.activation) + (e->residual ? "+residual" : ""));
  fastconv::PostOps add_input;
  add_input.residual = s.residual;
  project_post_ = make_epilogue(add_input, isa);

  const int64_t Ed = s.depthwise_channels(), P = s.P(), Q = s.Q(), L = direct_->lanes, sw = s.stride;
  // The depthwise row buffer: direct_conv's layout for 3 taps of stride sw (one segment per column
  // phase, whole vectors, one vector of slack for the taps past the row).
  const int64_t nvq = (Q + L - 1) / L;
  wph_ = (nvq + 1) * L;
  phases_[0] = 0, phases_[1] = 1;
  row_stride_ = sw * wph_;
  for (int i = 0; i < 3; ++i) soff_[i] = int32_t((i % sw) * wph_ + i / sw);

  // Bands: as many output rows as keep e and d within band_floats(); whole images per task when the
  // batch gives every thread one, else each image split into row ranges.
  const int64_t per_row = Ed * (s.E ? sw * s.W : 0) + Ed * Q;
  band_rows_ = std::clamp<int64_t>((band_floats() - (s.E ? 2 * Ed * s.W : 0)) / per_row, 1, P);
  splits_ = std::min<int64_t>(P, (threads + s.N - 1) / s.N);
  e_cap_rows_ = (band_rows_ - 1) * sw + 3;

  const GemmBlocking& bl = gemm_->blocking;
  const int64_t kc_max = std::min<int64_t>(bl.kc, std::max(s.E ? s.C : 0, Ed));
  b_pack_floats_ = round_up16(packed_b_floats(kc_max, kPixelBlock, bl.nr));
  row_buf_floats_ = round_up16(e_cap_rows_ * row_stride_ + L);
  e_floats_ = s.E ? round_up16(Ed * e_cap_rows_ * s.W) + 16 : 0;
  d_floats_ = round_up16(Ed * band_rows_ * Q) + 16;
  slot_floats_ = b_pack_floats_ + row_buf_floats_ + e_floats_ + d_floats_;

  // Weights: the products' A panels, the depthwise taps column-major (as DirectDepthwise packs them).
  if (s.E) {
    expand_packed_ = AlignedBuffer<float>(std::size_t(packed_a_floats(s.E, s.C, bl.mr)));
    pack_a_panels(gemm_->transpose_rows, expand_w, s.C, s.E, s.C, bl.mr, expand_packed_.data());
  }
  project_packed_ = AlignedBuffer<float>(std::size_t(packed_a_floats(s.K, Ed, bl.mr)));
  pack_a_panels(gemm_->transpose_rows, project_w, Ed, s.K, Ed, bl.mr, project_packed_.data());
  dw_packed_ = AlignedBuffer<float>(std::size_t(Ed * 9));
  for (int64_t c = 0; c < Ed; ++c)
    for (int r = 0; r < 3; ++r)
      for (int t = 0; t < 3; ++t) dw_packed_[std::size_t(c * 9 + t * 3 + r)] = dw_w[c * 9 + r * 3 + t];
  biases_ = AlignedBuffer<float>(std::size_t(s.E + Ed + s.K));
  if (s.E) std::copy(expand_b, expand_b + s.E, biases_.data());
  std::copy(dw_b, dw_b + Ed, biases_.data() + s.E);
  std::copy(project_b, project_b + s.K, biases_.data() + s.E + Ed);
}

bool InvertedResidual::pays(const InvertedResidualShape& s, int threads) {
  const double e_bytes = 4.0 * double(s.N) * double(s.depthwise_channels()) * double(s.H) * double(s.W);
  return s.P() * s.Q() >= 64 && e_bytes > double(cpu_cache_sizes().l2) * double(std::max(threads, 1));
}

std::string InvertedResidual::describe() const {
  std::ostringstream o;
  o << "inverted residual " << s_.C << "->" << (s_.E ? s_.E : s_.C) << "->" << s_.K << " stride " << s_.stride
    << (s_.residual ? " +x" : "") << ": bands of " << band_rows_ << " output rows, " << splits_
    << " row range(s) per image, " << gemm_->name << ", " << slot_floats_ * 4 / 1024 << " KiB per thread";
  return o.str();
}

void InvertedResidual::run(const float* x, float* y) const {
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  const ThreadPool pool(threads_);
  const std::size_t floats = std::size_t(slot_floats_) * std::size_t(pool.threads());
  AlignedBuffer<float> own;
  float* scratch;
  if (lock.owns_lock()) {
    if (scratch_.size() < floats) scratch_ = AlignedBuffer<float>(floats);
    scratch = scratch_.data();
  } else {
    own = AlignedBuffer<float>(floats);
    scratch = own.data();
  }
  const int64_t P = s_.P();
  pool.for_each(s_.N * splits_, [&](int64_t task, int slot) {
    const Range rows = run_of(P, splits_, task % splits_);
    run_rows(x, y, task / splits_, rows.begin, rows.end, scratch + std::size_t(slot) * std::size_t(slot_floats_));
  });
}

void InvertedResidual::run_rows(const float* x, float* y, int64_t n, int64_t p_begin, int64_t p_end,
                                float* scratch) const {
  const InvertedResidualShape& s = s_;
  const int64_t Ed = s.depthwise_channels(), P = s.P(), Q = s.Q(), HW = s.H * s.W, sw = s.stride;
  const float* x_n = x + n * s.C * HW;
  float* y_n = y + n * s.K * P * Q;
  float* b_pack = scratch;
  float* row_buf = b_pack + b_pack_floats_;
  float* d = row_buf + row_buf_floats_;
  float* e = d + d_floats_;
  const int64_t lde = e_cap_rows_ * s.W;
  int64_t have0 = 0, have1 = 0;  // image rows of e in the buffer, from its first row
  // Bands of even sizes (a last band of a few rows would run narrow, slow GEMMs)
  const int64_t bands = (p_end - p_begin + band_rows_ - 1) / band_rows_;
  for (int64_t band = 0; band < bands; ++band) {
    const Range r = run_of(p_end - p_begin, bands, band);
    const int64_t p0 = p_begin + r.begin, rows = r.end - r.begin;
    const int64_t need0 = std::max<int64_t>(0, p0 * sw - 1), need1 = std::min(s.H, (p0 + rows - 1) * sw + 2);
    if (s.E) {
      // The rows the last band computed and this one needs move up; the rest are computed below them.
      int64_t kept = 0;
      if (need0 >= have0 && need0 < have1) {
        kept = have1 - need0;
        if (need0 > have0)
          for (int64_t c = 0; c < Ed; ++c)
            std::memmove(e + c * lde, e + c * lde + (need0 - have0) * s.W, std::size_t(kept * s.W) * sizeof(float));
      }
      const int64_t first = need0 + kept;
      gemm_rows(*gemm_, expand_packed_.data(), s.E, s.C, x_n + first * s.W, HW, (need1 - first) * s.W,
                e + kept * s.W, lde, biases_.data(), expand_post_, nullptr, b_pack);
      have0 = need0, have1 = need1;
      depthwise_band(e, need0, need1 - need0, lde, p0, rows, d, row_buf);
    } else {
      depthwise_band(x_n, 0, s.H, HW, p0, rows, d, row_buf);
    }
    gemm_rows(*gemm_, project_packed_.data(), s.K, Ed, d, rows * Q, rows * Q, y_n + p0 * Q, P * Q,
              biases_.data() + s.E + Ed, project_post_, s.residual ? x_n + p0 * s.W : nullptr, b_pack);
  }
}

void InvertedResidual::depthwise_band(const float* src, int64_t src_row0, int64_t src_rows, int64_t ld, int64_t p0,
                                      int64_t rows, float* d, float* row_buf) const {
  const int64_t Ed = s_.depthwise_channels(), Q = s_.Q(), sw = s_.stride;
  RowPack pk;
  pk.H = src_rows, pk.W = s_.W;
  pk.iy0 = p0 * sw - 1 - src_row0;  // rows outside the source (the image's padding) pack as zeros
  pk.rows = (rows - 1) * sw + 3;
  pk.ix0 = -1, pk.sw = sw;
  pk.phase = phases_, pk.phases = sw, pk.wph = wph_, pk.row_stride = row_stride_;
  pk.dst = row_buf;
  DwStrip a;
  a.row_stride = row_stride_;
  a.soff = soff_;
  a.S = 3;
  a.ldo = Q;
  a.width = Q;
  if (dw_post_.active()) a.post = &dw_post_.params;
  const int64_t mp = direct_->dw_rows[0], strips = (rows + mp - 1) / mp;
  for (int64_t c = 0; c < Ed; ++c) {
    pk.x = src + c * ld;
    direct_->pack(pk);
    a.w = dw_packed_.data() + c * 9;
    a.bias = biases_[std::size_t(s_.E + c)];
    for (int64_t st = 0; st < strips; ++st) {
      const Range r = run_of(rows, strips, st);
      a.buf = row_buf + r.begin * sw * row_stride_;
      a.out = d + c * rows * Q + r.begin * Q;
      direct_->dw[0][sw - 1][r.end - r.begin - 1](a);
    }
  }
}

}  // namespace fastconv_python
