// Microkernel testers (XNNPACK style): each per-ISA kernel against a plain loop, over every edge
// and remainder, for every instruction set up to the cap ([isa]: CTest runs them under each cap).
// The direct tile and depthwise strip, the implicit-im2col gather, the FFT products/split/merge.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/geometry.hpp"
#include "backward/dot_kernels.hpp"
#include "gemm/sgemm_kernel.hpp"
#include "direct/direct_kernels.hpp"
#include "fft/fft_kernels.hpp"
#include "im2col/im2col_pack.hpp"

using namespace fastconv;
using namespace fastconv::detail;

namespace {

constexpr float kSentinel = -777.0f;

std::vector<Isa> isas_to_test() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Sse2, Isa::Avx2, Isa::Avx512})
    if (isa <= best_isa()) out.push_back(isa);
  return out;
}

// Small integers: every kernel is exact on them, whatever its order of operations and FMA use.
void fill_small_ints(float* p, std::size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(-4, 4);
  for (std::size_t i = 0; i < n; ++i) p[i] = float(d(rng));
}

}  // namespace

TEST_CASE("kernel tester: direct tile, every MK x NV, partial vectors, k-blocks, bias or accumulate", "[isa][kernels][direct]") {
  std::mt19937 rng(11);
  for (Isa isa : isas_to_test()) {
    const DirectKernels& k = direct_kernels(isa);
    const int L = k.lanes;
    INFO("isa " << isa_name(isa));
    int tested = 0;
    for (int mklog = 0; mklog < k.mk_variants; ++mklog)
      for (int nv = 1; nv <= kMaxNv; ++nv) {
        const DirectTileFn fn = k.tile[mklog][nv - 1];
        const int MK = 1 << mklog;
        if (!fn) {
          CHECK(MK * nv > k.accumulators);  // null only where over the register budget
          continue;
        }
        for (int mk = 1; mk <= MK; ++mk)
          for (int64_t ntaps : {1, 2, 7})
            for (int64_t nk : {1, 2})
              for (bool with_bias : {false, true})
                for (int partial : {0, 1, L - 1}) {
                  if (partial == 0 && (mk + ntaps) % 2) continue;  // keep the sweep short
                  const unsigned mask = partial ? 1u << (nv - 1) : 0u;
                  const int lanes_partial = partial ? partial : L;
                  // Input buffer: nv vectors at random offsets, taps within it.
                  const int64_t span = 64 + 8 * L;
                  AlignedBuffer<float> buf(static_cast<std::size_t>(nv * span + 2 * L));
                  fill_small_ints(buf.data(), buf.size(), rng);
                  std::vector<const float*> in(static_cast<std::size_t>(nv));
                  for (int v = 0; v < nv; ++v) in[static_cast<std::size_t>(v)] = buf.data() + v * span + int64_t(rng() % 5);
                  std::vector<int32_t> taps(static_cast<std::size_t>(ntaps));
                  for (auto& t : taps) t = int32_t(rng() % uint32_t(span - L - 5));
                  const int64_t w_step = ntaps * MK + 3;
                  AlignedBuffer<float> w(static_cast<std::size_t>(nk * w_step));
                  fill_small_ints(w.data(), w.size(), rng);
                  for (int64_t kb = 0; kb < nk; ++kb)  // channels past mk are zero in the contract
                    for (int64_t t = 0; t < ntaps; ++t)
                      for (int i = mk; i < MK; ++i) w[static_cast<std::size_t>(kb * w_step + t * MK + i)] = 0;
                  std::vector<float> bias(static_cast<std::size_t>(nk * MK));
                  fill_small_ints(bias.data(), bias.size(), rng);
                  const int64_t out_k_stride = nv * L + 7;
                  const int64_t channels = nk * MK;
                  std::vector<float> out(static_cast<std::size_t>(channels * out_k_stride + L), kSentinel);
                  for (int64_t c = 0; c < channels; ++c)
                    if (!with_bias)
                      for (int64_t q = 0; q < nv * L; ++q) out[static_cast<std::size_t>(c * out_k_stride + q)] = float(int(rng() % 7) - 3);
                  std::vector<float*> outp(static_cast<std::size_t>(nv));
                  for (int v = 0; v < nv; ++v) outp[static_cast<std::size_t>(v)] = out.data() + v * L;
                  // Plain loop.
                  std::vector<float> want = out;
                  for (int64_t kb = 0; kb < nk; ++kb)
                    for (int i = 0; i < mk; ++i)
                      for (int v = 0; v < nv; ++v) {
                        const int width = (mask >> v) & 1 ? lanes_partial : L;
                        for (int l = 0; l < width; ++l) {
                          float& o = want[static_cast<std::size_t>((kb * MK + i) * out_k_stride + v * L + l)];
                          double acc = with_bias ? bias[static_cast<std::size_t>(kb * MK + i)] : o;
                          for (int64_t t = 0; t < ntaps; ++t)
                            acc += double(w[static_cast<std::size_t>(kb * w_step + t * MK + i)]) * in[static_cast<std::size_t>(v)][taps[static_cast<std::size_t>(t)] + l];
                          o = float(acc);
                        }
                      }
                  DirectTile a{in.data(), taps.data(), ntaps, w.data(), w_step, nk, outp.data(), out_k_stride, mk,
                               mask, lanes_partial, with_bias ? bias.data() : nullptr};
                  fn(a);
                  INFO("MK " << MK << " NV " << nv << " mk " << mk << " taps " << ntaps << " nk " << nk << " bias "
                             << with_bias << " partial " << partial);
                  REQUIRE(out == want);  // exact on small integers; untouched lanes keep their values
                  ++tested;
                }
      }
    CHECK(tested > 0);
  }
}

namespace {

// One depthwise strip call to test: its shape, weights and bias, and an output with slack past each
// row (sentinels, which must survive).
struct DwCase {
  DwStripFn fn;
  int R, sh, mp;
  int64_t width, S, ldo;
  std::vector<float> w;
  float bias;
  std::vector<float> out, want;
  // want = bias + sum over s, r of w[s][r] * input(m, j, s, r), in double (exact on small integers).
  template <class Input>
  void reference(Input&& input) {
    for (int m = 0; m < mp; ++m)
      for (int64_t j = 0; j < width; ++j) {
        double acc = bias;
        for (int64_t s = 0; s < S; ++s)
          for (int r = 0; r < R; ++r) acc += double(w[static_cast<std::size_t>(s * R + r)]) * input(m, j, s, r);
        want[static_cast<std::size_t>(m * ldo + j)] = float(acc);
      }
  }
};

// Every strip kernel of a table (k.dw or k.dw_in_place): each R, vertical stride and MP that
// has(R index, stride) says the table holds, widths past every vector remainder. `run` builds the
// case's input and its reference (DwCase::reference), calls fn and requires out == want.
template <class Has, class Run>
void sweep_dw_strips(const DirectKernels& k, const DwStripFn (&table)[kDwKernels][2][kMaxDwRows], Has&& has,
                     std::mt19937& rng, Run&& run) {
  const int L = k.lanes;
  for (int ri = 0; ri < kDwKernels; ++ri)
    for (int sh = 1; sh <= 2; ++sh)
      for (int mp = 1; mp <= k.dw_rows[ri]; ++mp) {
        if (!has(ri, sh)) {
          REQUIRE(table[ri][sh - 1][mp - 1] == nullptr);
          continue;
        }
        REQUIRE(table[ri][sh - 1][mp - 1] != nullptr);
        for (int64_t width : {int64_t(1), int64_t(L - 1), int64_t(L), int64_t(L + 1), int64_t(3 * L + 2)}) {
          if (width < 1) continue;
          DwCase c{table[ri][sh - 1][mp - 1], 3 + 2 * ri, sh, mp, width, 1 + int64_t(rng() % 5), width + 5, {}, 0, {}, {}};
          c.w.resize(static_cast<std::size_t>(c.S * c.R));
          fill_small_ints(c.w.data(), c.w.size(), rng);
          c.bias = float(int(rng() % 9) - 4);
          c.out.assign(static_cast<std::size_t>(mp * c.ldo + L), kSentinel);
          c.want = c.out;
          INFO("R " << c.R << " SH " << sh << " MP " << mp << " width " << width << " S " << c.S);
          run(c);
        }
      }
}

}  // namespace

TEST_CASE("kernel tester: depthwise strip, every R, stride, MP and width remainder", "[isa][kernels][direct][depthwise]") {
  std::mt19937 rng(12);
  for (Isa isa : isas_to_test()) {
    const DirectKernels& k = direct_kernels(isa);
    INFO("isa " << isa_name(isa));
    sweep_dw_strips(k, k.dw, [](int, int) { return true; }, rng, [&](DwCase& c) {
      std::vector<int32_t> soff(static_cast<std::size_t>(c.S));
      for (auto& s : soff) s = int32_t(rng() % 9);
      const int64_t row_stride = c.width + k.lanes + 16;
      const int64_t rows = int64_t(c.mp - 1) * c.sh + c.R;
      AlignedBuffer<float> buf(static_cast<std::size_t>(rows * row_stride + k.lanes));
      fill_small_ints(buf.data(), buf.size(), rng);
      c.reference([&](int m, int64_t x, int64_t s, int r) {
        return double(buf[static_cast<std::size_t>((m * c.sh + r) * row_stride + soff[static_cast<std::size_t>(s)] + x)]);
      });
      c.fn(DwStrip{buf.data(), row_stride, soff.data(), c.S, c.w.data(), c.bias, c.out.data(), c.ldo, c.width});
      REQUIRE(c.out == c.want);  // exact on small integers; the sentinels past each row untouched
    });
  }
}

namespace {

// One call of an in-place strip kernel on an H x W plane of small integers, its first row iy0 and
// column ix0 from the plane's corner, the column taps dil_w apart: out == c's reference, exactly.
void check_in_place_strip(DwCase& c, std::mt19937& rng, int64_t H, int64_t W, int64_t iy0, int64_t ix0,
                          int64_t dil_w) {
  std::vector<float> x(static_cast<std::size_t>(H * W));
  fill_small_ints(x.data(), x.size(), rng);
  const std::vector<float> zero(static_cast<std::size_t>(W), 0.0f);
  std::fill(c.out.begin(), c.out.end(), kSentinel);
  c.want = c.out;
  c.reference([&](int m, int64_t j, int64_t s, int r) {
    const int64_t iy = iy0 + m * c.sh + r, ix = ix0 + j * c.sh + s * dil_w;
    return iy >= 0 && iy < H && ix >= 0 && ix < W ? double(x[static_cast<std::size_t>(iy * W + ix)]) : 0.0;
  });
  DwStrip a{nullptr, 0, nullptr, c.S, c.w.data(), c.bias, c.out.data(), c.ldo, c.width};
  a.x = x.data(), a.zero_row = zero.data(), a.H = H, a.W = W, a.iy0 = iy0, a.ix0 = ix0, a.dil_w = dil_w;
  c.fn(a);
  INFO("dil " << dil_w << " H " << H << " W " << W << " iy0 " << iy0 << " ix0 " << ix0);
  REQUIRE(c.out == c.want);
}

}  // namespace

TEST_CASE("kernel tester: depthwise strip in place, every R and stride it has, MP, edge and width remainder", "[isa][kernels][direct][depthwise]") {
  std::mt19937 rng(17);
  for (Isa isa : isas_to_test()) {
    const DirectKernels& k = direct_kernels(isa);
    INFO("isa " << isa_name(isa));
    if (!k.dw_in_place[0][0][0]) continue;  // AVX-512 only
    // 3x3 at strides 1 and 2, 5x5 and 7x7 at stride 1 (at stride 2 they stay packed).
    sweep_dw_strips(k, k.dw_in_place, [](int ri, int sh) { return sh == 1 || ri == 0; }, rng, [&](DwCase& c) {
      // The plane's edges inside the strip, both ways: rows from above the top to below the bottom,
      // columns from left of the first to right of the last; column taps dilated or not.
      const int64_t dil_w = 1 + int64_t(rng() % 2);
      const int64_t H = 1 + int64_t(rng() % uint64_t(c.mp * c.sh + c.R + 2));
      const int64_t W = 1 + int64_t(rng() % uint64_t(c.width * c.sh + 4));
      const int64_t iy0 = -int64_t(rng() % 3), ix0 = -int64_t(rng() % 4);
      check_in_place_strip(c, rng, H, W, iy0, ix0, dil_w);
    });
  }
}

// 3x3 at stride 2 over three dense column taps takes each row's taps together (one load of 33
// columns in place): every MP and width, the row's end anywhere around the last vector's reach.
TEST_CASE("kernel tester: depthwise 3x3 stride 2 in place, three dense taps per row, row ends around every vector",
          "[isa][kernels][direct][depthwise]") {
  std::mt19937 rng(23);
  for (Isa isa : isas_to_test()) {
    const DirectKernels& k = direct_kernels(isa);
    INFO("isa " << isa_name(isa));
    if (!k.dw_in_place[0][1][0]) continue;  // AVX-512 only
    sweep_dw_strips(k, k.dw_in_place, [](int ri, int sh) { return sh == 1 || ri == 0; }, rng, [&](DwCase& c) {
      if (c.R != 3 || c.sh != 2) return;
      c.S = 3;
      c.w.resize(9);
      fill_small_ints(c.w.data(), c.w.size(), rng);
      for (int64_t ix0 : {int64_t(-1), int64_t(0), int64_t(-2)})
        for (int64_t extra = -3; extra <= 3; ++extra) {
          const int64_t W = std::max<int64_t>(1, 2 * c.width + ix0 + extra);
          const int64_t H = c.mp * 2 + 1 + int64_t(rng() % 3), iy0 = -int64_t(rng() % 2);
          check_in_place_strip(c, rng, H, W, iy0, ix0, 1);
        }
    });
  }
}

TEST_CASE("kernel tester: im2col gather, every tile width, padding, strides, dilation, run splits", "[isa][kernels][im2col]") {
  std::mt19937 rng(13);
  struct Shape {
    int64_t c, h, w, r, s, sh, sw, pt, pl, dh, dw;
  };
  const Shape shapes[] = {{2, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1}, {3, 11, 6, 2, 5, 2, 1, 0, 2, 1, 2},
                          {1, 5, 17, 3, 1, 1, 3, 2, 0, 2, 1}, {2, 9, 9, 1, 1, 1, 1, 0, 0, 1, 1}};
  for (Isa isa : isas_to_test()) {
    const PackIm2colFn fn = pack_b_im2col_for(isa);
    INFO("isa " << isa_name(isa));
    for (const Shape& sp : shapes) {
      ConvProblem p;
      p.in_channels = sp.c, p.in_height = sp.h, p.in_width = sp.w, p.out_channels = 1;
      p.kernel_height = sp.r, p.kernel_width = sp.s, p.stride_h = sp.sh, p.stride_w = sp.sw;
      p.pad_top = p.pad_bottom = sp.pt, p.pad_left = p.pad_right = sp.pl, p.dilation_h = sp.dh, p.dilation_w = sp.dw;
      const Geometry g(p);
      std::vector<float> x(static_cast<std::size_t>(g.C * g.H * g.W));
      fill_small_ints(x.data(), x.size(), rng);
      const int64_t kdim = g.Cg * g.R * g.S, pixels = g.P * g.Q;
      for (int nr : {8, 16, 32}) {  // the GEMM tile widths (the packer traps on any other)
        for (int64_t n0 : {int64_t(0), int64_t(1), pixels / 3})
          for (int64_t ncols : {int64_t(1), int64_t(nr - 1), int64_t(nr + 1), pixels - n0}) {
            if (ncols < 1 || n0 + ncols > pixels) continue;
            for (int64_t k0 : {int64_t(0), kdim / 2}) {
              const int64_t kc = kdim - k0;
              std::vector<PixelRun> runs(static_cast<std::size_t>(max_pixel_runs(g, ncols)));
              const int64_t nruns = pixel_runs(g, n0, ncols, runs.data());
              const int64_t panels = (ncols + nr - 1) / nr, stride = im2col_panel_stride(kc, nr);
              AlignedBuffer<float> dst(static_cast<std::size_t>(panels * stride + 16));
              std::fill(dst.data(), dst.data() + dst.size(), kSentinel);
              AlignedBuffer<float> line(static_cast<std::size_t>(panels * nr + 64));
              fn(g, x.data(), k0, kc, runs.data(), nruns, ncols, nr, stride, line.data(), dst.data());
              for (int64_t kk = 0; kk < kc; ++kk) {
                const int64_t k = k0 + kk, c = k / (g.R * g.S), r = k / g.S % g.R, s = k % g.S;
                for (int64_t j = 0; j < panels * nr; ++j) {
                  float want = 0;
                  if (j < ncols) {
                    const int64_t pix = n0 + j, op = pix / g.Q, oq = pix % g.Q;
                    const int64_t iy = op * g.stride_h - g.pad_t + r * g.dil_h, ix = oq * g.stride_w - g.pad_l + s * g.dil_w;
                    if (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W) want = x[static_cast<std::size_t>((c * g.H + iy) * g.W + ix)];
                  }
                  const float got = dst[static_cast<std::size_t>((j / nr) * stride + kk * nr + j % nr)];
                  if (got != want) {
                    INFO("nr " << nr << " n0 " << n0 << " ncols " << ncols << " k0 " << k0 << " row " << k << " col " << j);
                    REQUIRE(got == want);
                  }
                }
              }
            }
          }
      }
    }
  }
}

TEST_CASE("kernel tester: FFT split and merge, every bin count past the block width", "[isa][kernels][fft]") {
  std::mt19937 rng(14);
  for (Isa isa : isas_to_test()) {
    const FftKernels& k = fft_kernels(isa);
    const int L = k.lanes;
    INFO("isa " << isa_name(isa));
    for (int64_t bins = 1; bins <= 3 * L + 1; ++bins) {
      const int64_t blocks = (bins + L - 1) / L, stride = 2 * L + 2 * L * (bins % 3);
      std::vector<float> spectrum(static_cast<std::size_t>(2 * bins));
      fill_small_ints(spectrum.data(), spectrum.size(), rng);
      AlignedBuffer<float> split(static_cast<std::size_t>(blocks * stride + 2 * L));
      std::fill(split.data(), split.data() + split.size(), kSentinel);
      k.split(spectrum.data(), bins, split.data(), stride);
      for (int64_t b = 0; b < blocks; ++b)
        for (int l = 0; l < L; ++l) {
          const int64_t bin = b * L + l;
          INFO("bins " << bins << " block " << b << " lane " << l);
          REQUIRE(split[static_cast<std::size_t>(b * stride + l)] == (bin < bins ? spectrum[static_cast<std::size_t>(2 * bin)] : 0.0f));
          REQUIRE(split[static_cast<std::size_t>(b * stride + L + l)] == (bin < bins ? spectrum[static_cast<std::size_t>(2 * bin + 1)] : 0.0f));
        }
      std::vector<float> merged(static_cast<std::size_t>(2 * bins + 2 * L), kSentinel);
      k.merge(split.data(), stride, bins, merged.data());
      for (int64_t i = 0; i < 2 * bins; ++i) REQUIRE(merged[static_cast<std::size_t>(i)] == spectrum[static_cast<std::size_t>(i)]);
      for (std::size_t i = static_cast<std::size_t>(2 * bins); i < merged.size(); ++i) REQUIRE(merged[i] == kSentinel);
    }
  }
}

TEST_CASE("kernel tester: FFT per-bin products, every kg, cg and tile count around the register tile", "[isa][kernels][fft]") {
  std::mt19937 rng(15);
  for (Isa isa : isas_to_test()) {
    const FftKernels& k = fft_kernels(isa);
    const int L = k.lanes, B = 2 * L;
    INFO("isa " << isa_name(isa) << " tile " << k.mr << "x" << k.nr);
    for (int64_t kg = 1; kg <= 2 * k.mr + 1; ++kg)
      for (int64_t cg : {1, 3})
        for (int64_t nt = 1; nt <= 2 * k.nr + 1; ++nt) {
          const int64_t ld = (nt + 1) * B;  // rows of x and y: a spare block past the tiles
          AlignedBuffer<float> w(static_cast<std::size_t>(kg * cg * B)), x(static_cast<std::size_t>(cg * ld)), y(static_cast<std::size_t>(kg * ld));
          fill_small_ints(w.data(), w.size(), rng);
          fill_small_ints(x.data(), x.size(), rng);
          std::fill(y.data(), y.data() + y.size(), kSentinel);
          k.products(kg, cg, nt, w.data(), x.data(), y.data(), ld);
          for (int64_t kk = 0; kk < kg; ++kk)
            for (int64_t t = 0; t < ld / B; ++t)
              for (int l = 0; l < L; ++l) {
                float want_re = kSentinel, want_im = kSentinel;
                if (t < nt) {
                  double re = 0, im = 0;
                  for (int64_t c = 0; c < cg; ++c) {
                    const float* wb = w.data() + (kk * cg + c) * B;
                    const float* xb = x.data() + c * ld + t * B;
                    re += double(wb[l]) * xb[l] - double(wb[L + l]) * xb[L + l];
                    im += double(wb[l]) * xb[L + l] + double(wb[L + l]) * xb[l];
                  }
                  want_re = float(re), want_im = float(im);
                }
                INFO("kg " << kg << " cg " << cg << " nt " << nt << " k " << kk << " tile " << t << " lane " << l);
                REQUIRE(y[static_cast<std::size_t>(kk * ld + t * B + l)] == want_re);
                REQUIRE(y[static_cast<std::size_t>(kk * ld + t * B + L + l)] == want_im);
              }
        }
  }
}

TEST_CASE("kernel tester: backward-weights depthwise taps, every NS, widths past every vector, odd rows, tails masked",
          "[isa][kernels][backward]") {
  std::mt19937 rng(17);
  for (Isa isa : isas_to_test()) {
    const DotKernels& k = dot_kernels(isa);
    INFO("isa " << isa_name(isa));
    CHECK(k.lanes == (isa == Isa::Avx512 ? 16 : isa == Isa::Avx2 ? 8 : 4));
    for (int ns = 1; ns <= kMaxDepthwiseTaps; ++ns)
      for (int64_t rows : {1, 2, 3, 4, 7})
        for (int64_t width = 1; width <= 2 * kDepthwiseAlign + 3; ++width) {
          const int64_t padded = (width + kDepthwiseAlign - 1) / kDepthwiseAlign * kDepthwiseAlign;
          const int64_t ldy = padded + 5, ldx = padded + 11;  // odd strides: unaligned rows
          const int64_t shift[kMaxDepthwiseTaps] = {0, 3, 1, 10};
          std::vector<float> dy(std::size_t(rows * ldy)), x(std::size_t(rows * ldx + 16));
          fill_small_ints(dy.data(), dy.size(), rng);
          fill_small_ints(x.data(), x.size(), rng);
          // Past the width: garbage in dy and an Inf in x (where no tap's window reads) must not
          // reach the sums: the lanes past the width are masked, not multiplied by zero.
          for (int64_t i = 0; i < rows; ++i) {
            for (int64_t q = width; q < ldy; ++q) dy[std::size_t(i * ldy + q)] = 1e30f;
            for (int64_t at = 0; at < ldx; ++at) {
              bool read = false;
              for (int j = 0; j < ns; ++j) read = read || (at >= shift[j] && at < shift[j] + width);
              if (!read) x[std::size_t(i * ldx + at)] = INFINITY;
            }
          }
          float out[kMaxDepthwiseTaps];
          std::fill(out, out + kMaxDepthwiseTaps, kSentinel);
          double want[kMaxDepthwiseTaps] = {};
          for (int j = 0; j < ns; ++j)
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t q = 0; q < width; ++q)
                want[j] += double(dy[std::size_t(i * ldy + q)]) * x[std::size_t(i * ldx + shift[j] + q)];
          k.taps[ns - 1](rows, width, dy.data(), ldy, x.data(), ldx, shift, out);
          INFO("ns " << ns << " rows " << rows << " width " << width);
          for (int j = 0; j < ns; ++j) REQUIRE(out[j] == float(want[j]));
          for (int j = ns; j < kMaxDepthwiseTaps; ++j) REQUIRE(out[j] == kSentinel);
        }
  }
}

TEST_CASE("kernel tester: backward-weights 3x3 depthwise and its bias in place, pads, dilations, row strides, widths past every vector",
          "[isa][kernels][backward]") {
  std::mt19937 rng(23);
  for (Isa isa : isas_to_test()) {
    const DotKernels& k = dot_kernels(isa);
    INFO("isa " << isa_name(isa));
    for (int64_t W : {1, 3, 8, 15, 16, 17, 33})
      for (int64_t H : {1, 2, 5})
        for (int64_t pad = 0; pad <= 3; ++pad)
          for (int64_t dil = 1; dil <= 3; ++dil)
            for (int64_t sh = 1; sh <= 2; ++sh) {
              // One channel as the implementation reads it: x [H, W] and dy [P, Q] read in place,
              // each in a vector of exactly its size (AddressSanitizer sees a read past either).
              const int64_t P = (H + 2 * pad - 2 * dil - 1) / sh + 1, Q = W + 2 * pad - 2 * dil;
              if (P <= 0 || Q <= 0) continue;
              std::vector<float> x(std::size_t(H * W)), dy(std::size_t(P * Q));
              fill_small_ints(x.data(), x.size(), rng);
              fill_small_ints(dy.data(), dy.size(), rng);
              Depthwise3x3 a;
              a.rows = P, a.width = Q, a.dy = dy.data(), a.ldy = Q, a.x = x.data(), a.ldx = sh * W;
              double want[10] = {};
              for (int r = 0; r < 3; ++r) {
                const int64_t offset = r * dil - pad;
                a.tap_row[r] = offset * W;
                a.row_begin[r] = P, a.row_end[r] = 0;
                for (int64_t i = 0; i < P; ++i)
                  if (i * sh + offset >= 0 && i * sh + offset < H)
                    a.row_begin[r] = std::min(a.row_begin[r], i), a.row_end[r] = i + 1;
                if (a.row_begin[r] > a.row_end[r]) a.row_begin[r] = a.row_end[r];
              }
              for (int s = 0; s < 3; ++s)
                a.shift[s] = s * dil - pad, a.col_begin[s] = pad - s * dil, a.col_end[s] = W + pad - s * dil;
              for (int r = 0; r < 3; ++r)
                for (int s = 0; s < 3; ++s)
                  for (int64_t i = a.row_begin[r]; i < a.row_end[r]; ++i)
                    for (int64_t q = std::max<int64_t>(0, a.col_begin[s]); q < std::min(Q, a.col_end[s]); ++q)
                      want[r * 3 + s] += double(dy[std::size_t(i * Q + q)]) *
                                         x[std::size_t(i * a.ldx + a.tap_row[r] + a.shift[s] + q)];
              for (float d : dy) want[9] += d;  // every row, also those no tap row reaches
              float out[11];
              std::fill(out, out + 11, kSentinel);
              k.taps3x3(a, out);
              INFO("H " << H << " W " << W << " pad " << pad << " dil " << dil << " stride " << sh);
              for (int j = 0; j < 10; ++j) REQUIRE(out[j] == float(want[j]));
              REQUIRE(out[10] == kSentinel);
            }
  }
}

TEST_CASE("kernel tester: backward-weights outer-product tiles, every variant, pixels past every row, repeated taps",
          "[isa][kernels][backward]") {
  std::mt19937 rng(29);
  for (Isa isa : isas_to_test()) {
    const DotKernels& k = dot_kernels(isa);
    INFO("isa " << isa_name(isa));
    CHECK(k.outer[kOuterVariants - 1].kv == 1);
    for (const OuterVariant& v : k.outer)
      for (int64_t rows : {0, 1, 3})
        for (int64_t cols : {1, 2, 7, 19})
          for (bool accumulate : {false, true}) {
            const int64_t width = int64_t(v.kv) * k.lanes, ldt = width + 3, dyt_row = cols * ldt + 5, x_row = cols + 9;
            std::vector<float> dyt(std::size_t(std::max<int64_t>(rows, 1) * dyt_row)), x(std::size_t(v.nt * 4 * x_row));
            fill_small_ints(dyt.data(), dyt.size(), rng);
            fill_small_ints(x.data(), x.size(), rng);
            // Tap t reads x from row block t (the last tap repeats the one before: same accumulator).
            std::vector<const float*> xt(std::size_t(v.nt));
            std::vector<std::vector<float>> acc(std::size_t(v.nt), std::vector<float>(std::size_t(width)));
            std::vector<float*> acc_ptr(std::size_t(v.nt));
            for (int t = 0; t < v.nt; ++t) {
              const int src = t == v.nt - 1 && v.nt > 1 ? t - 1 : t;
              xt[std::size_t(t)] = x.data() + src * 4 * x_row + src % 3;
              acc_ptr[std::size_t(t)] = acc[std::size_t(src)].data();
              fill_small_ints(acc[std::size_t(t)].data(), std::size_t(width), rng);
            }
            std::vector<std::vector<double>> want(std::size_t(v.nt), std::vector<double>(std::size_t(width)));
            for (int t = 0; t < v.nt; ++t)
              for (int64_t l = 0; l < width; ++l) {
                double sum = accumulate ? double(acc_ptr[std::size_t(t)][l]) : 0.0;
                for (int64_t i = 0; i < rows; ++i)
                  for (int64_t j = 0; j < cols; ++j)
                    sum += double(dyt[std::size_t(i * dyt_row + j * ldt + l)]) * xt[std::size_t(t)][i * x_row + j];
                want[std::size_t(t)][std::size_t(l)] = sum;
              }
            OuterTile a;
            a.rows = rows, a.cols = cols, a.dyt = dyt.data(), a.ldt = ldt, a.dyt_row = dyt_row;
            a.x = xt.data(), a.x_row = x_row, a.acc = acc_ptr.data(), a.accumulate = accumulate;
            v.fn(a);
            INFO("kv " << v.kv << " nt " << v.nt << " rows " << rows << " cols " << cols << " accumulate " << accumulate);
            for (int t = 0; t < v.nt; ++t)
              for (int64_t l = 0; l < width; ++l)
                REQUIRE(acc_ptr[std::size_t(t)][l] == float(want[std::size_t(t)][std::size_t(l)]));
          }
  }
}

TEST_CASE("kernel tester: backward-data depthwise stride 2, both column phases, widths past every vector",
          "[isa][kernels][backward]") {
  std::mt19937 rng(31);
  for (Isa isa : isas_to_test()) {
    const DotKernels& k = dot_kernels(isa);
    INFO("isa " << isa_name(isa));
    for (int64_t W : {1, 2, 5, 16, 31, 32, 33, 64, 67})
      for (int64_t R : {1, 3, 4})
        for (int64_t S : {1, 2, 3, 5})
          for (int64_t pad = 0; pad <= 2; ++pad) {
            const int64_t H = 7, P = (H + 2 * pad - R) / 2 + 1, Q = (W + 2 * pad - S) / 2 + 1;
            if (P < 1 || Q < 1) continue;
            // dy and dx in vectors of exactly their size: AddressSanitizer sees a read or write past them.
            std::vector<float> dy(std::size_t(P * Q)), w(std::size_t(R * S)), dx(std::size_t(H * W), kSentinel);
            fill_small_ints(dy.data(), dy.size(), rng);
            fill_small_ints(w.data(), w.size(), rng);
            DepthwiseS2Data a;
            a.dy = dy.data(), a.P = P, a.Q = Q, a.w = w.data(), a.R = R, a.S = S, a.pad_t = pad, a.pad_l = pad;
            a.bias = 3.0f, a.dx = dx.data(), a.H = H, a.W = W;
            k.depthwise_s2_data(a);
            INFO("W " << W << " R " << R << " S " << S << " pad " << pad);
            for (int64_t h = 0; h < H; ++h)
              for (int64_t c = 0; c < W; ++c) {
                double want = 3.0;
                for (int64_t r = 0; r < R; ++r)
                  for (int64_t s = 0; s < S; ++s) {
                    const int64_t ph = h + pad - r, pw = c + pad - s;
                    if (ph % 2 || pw % 2 || ph < 0 || pw < 0 || ph / 2 >= P || pw / 2 >= Q) continue;
                    want += double(w[std::size_t(r * S + s)]) * dy[std::size_t(ph / 2 * Q + pw / 2)];
                  }
                REQUIRE(dx[std::size_t(h * W + c)] == float(want));
              }
          }
  }
}

TEST_CASE("kernel tester: the packing transpose of up to 16 rows, every row count, k past every block",
          "[isa][kernels][gemm]") {
  std::mt19937 rng(19);
  for (Isa isa : isas_to_test()) {
    const SgemmKernel& k = sgemm_kernel(isa);
    INFO("isa " << isa_name(isa));
    for (int rows = 1; rows <= 16; ++rows)
      for (int64_t kk : {1, 15, 16, 17, 33, 64})
        for (int64_t ldd : {int64_t(rows), int64_t(12), int64_t(16), int64_t(32), int64_t(37)}) {
          if (ldd < rows) continue;
          const int64_t ld = kk + 3;
          std::vector<float> src(std::size_t(rows * ld)), dst(std::size_t(kk * ldd + 8), kSentinel);
          fill_small_ints(src.data(), src.size(), rng);
          k.transpose_rows(src.data(), ld, rows, kk, dst.data(), ldd);
          INFO("rows " << rows << " k " << kk << " ldd " << ldd);
          for (int64_t p = 0; p < kk; ++p)
            for (int64_t r = 0; r < ldd; ++r)
              REQUIRE(dst[std::size_t(p * ldd + r)] == (r < rows ? src[std::size_t(r * ld + p)] : kSentinel));
          for (std::size_t i = std::size_t(kk * ldd); i < dst.size(); ++i) REQUIRE(dst[i] == kSentinel);
        }
  }
}
