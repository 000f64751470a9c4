// Algorithm::Direct against the reference beyond the foundation sweep: every stride, dilation and
// padding, widths past every vector width, the depthwise and stem shapes (and that the intended
// kernel runs), groups with ragged channel blocks, huge kernels, non-finite inputs; and the same
// bits for any thread count and any workspace limit. [isa]: runs once per instruction set.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <utility>

#include "conv_tester.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;
using fastconv::testing::Data;
using fastconv::testing::make_data;
using fastconv::testing::run_plan;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::vector<float> run_direct(const ConvProblem& p, std::size_t limit, int threads, const std::vector<float>& x,
                              const std::vector<float>& w, const std::vector<float>& b, std::string* impl = nullptr) {
  PlanOptions o;
  o.algorithm = Algorithm::Direct;
  o.workspace_limit = limit;
  o.threads = threads;
  return run_plan(p, o, x, w, b, impl);
}

}  // namespace

TEST_CASE("direct: strides, dilations and paddings", "[isa][direct]") {
  int index = 0;
  for (int64_t stride : {1, 2, 3, 4, 5})
    for (int64_t dil : {1, 2, 3})
      for (int64_t k : {1, 2, 3, 5}) {
        ConvTester t;
        t.input(1, 3, 13 + stride, 21 + 2 * stride).kernel(5, k, k).stride(stride, 1 + (stride + dil) % 3).dilation(dil, 1 + dil % 2);
        // Symmetric, asymmetric and larger than the kernel.
        switch (index % 3) {
          case 0: t.pad(k / 2); break;
          case 1: t.pad(0, k, k + 1, 1); break;
          default: t.pad(k * dil + 2, 1, 0, k * dil + 3); break;
        }
        INFO("case " << index << ": " << to_string(t.get_problem()));
        t.seed(uint32_t(100 + index++)).check(Algorithm::Direct);
      }
}

TEST_CASE("direct: widths past every vector width and tile", "[isa][direct]") {
  for (int64_t w = 1; w <= 40; ++w) {
    INFO("width " << w);
    ConvTester().input(1, 2, 4, w).kernel(9, 3, 3).pad(1).seed(uint32_t(w)).check(Algorithm::Direct);  // general
    ConvTester().input(1, 3, 5, w).kernel(3, 3, 3).pad(1).groups(3).seed(uint32_t(w)).check(Algorithm::Direct);
    ConvTester().input(1, 2, 9, w + 2).kernel(2, 3, 3).stride(2).pad(1).groups(2).seed(uint32_t(w)).check(Algorithm::Direct);
    ConvTester().input(2, 3, 11, w + 4).kernel(10, 5, 5).stride(3).pad(2).seed(uint32_t(w)).check(Algorithm::Direct);
  }
  for (int64_t w : {63, 64, 65, 127, 129, 257})
    ConvTester().input(1, 4, 3, w).kernel(6, 1, 5).pad(0, 2).seed(uint32_t(w)).check(Algorithm::Direct);
}

TEST_CASE("direct: depthwise kernels at stride 1 and 2, channel multipliers", "[isa][direct][depthwise]") {
  for (int64_t r : {3, 5, 7})
    for (int64_t stride : {1, 2})
      for (int64_t mult : {1, 2, 3}) {
        const ConvTester t = ConvTester()
                                 .input(2, 5, 2 * r + 9, 3 * r + 14)
                                 .kernel(5 * mult, r, r)
                                 .stride(stride)
                                 .pad(r / 2)
                                 .groups(5)
                                 .seed(uint32_t(r * 10 + stride + mult))
                                 // (one output per channel on small images may go to the channel vectors)
                                 .implementation("direct_depthwise_" + std::to_string(r) + "x");
        INFO(to_string(t.get_problem()));
        const std::string impl = t.check(Algorithm::Direct);
        CHECK(starts_with(impl, "direct_depthwise_" + std::to_string(r) + "x" + std::to_string(r) + "_s" +
                                    std::to_string(stride) + "__"));
      }
  // Non-square, horizontal stride and dilation, asymmetric padding: still the stencil.
  CHECK(starts_with(ConvTester().input(1, 4, 17, 30).kernel(4, 5, 3).stride(1, 3).dilation(1, 2).pad(1, 3, 0, 2).groups(4).check(Algorithm::Direct),
                    "direct_depthwise_5x3_s1__"));
  CHECK(starts_with(ConvTester().input(1, 6, 40, 9).kernel(6, 7, 7).stride(2).pad(3).groups(6).check(Algorithm::Direct),
                    "direct_depthwise_7x7_s2__"));
  // Tall images: several strips per channel, strips of different heights.
  ConvTester().input(1, 2, 95, 37).kernel(2, 3, 3).pad(1).groups(2).check(Algorithm::Direct);
  ConvTester().input(1, 2, 77, 19).kernel(4, 7, 7).stride(2).pad(3).groups(2).check(Algorithm::Direct);
  // What the stencil does not take goes to the general kernel: vertical dilation or stride 3, other
  // kernel heights, 4 or more outputs per group (images too large for the channel vectors).
  for (const ConvTester& t : {ConvTester().input(1, 3, 64, 64).kernel(3, 3, 3).dilation(2, 1).pad(2).groups(3),
                              ConvTester().input(1, 3, 64, 64).kernel(3, 3, 3).stride(3).pad(1).groups(3),
                              ConvTester().input(1, 3, 64, 64).kernel(3, 4, 4).pad(2).groups(3),
                              ConvTester().input(1, 3, 20, 20).kernel(12, 3, 3).pad(1).groups(3)}) {
    INFO(to_string(t.get_problem()));
    CHECK(starts_with(t.check(Algorithm::Direct), "direct_general__"));
  }
}

TEST_CASE("direct: depthwise stencil in place gives the packed stencil's bits", "[isa][direct][depthwise]") {
  // AVX-512 only (elsewhere it declines): strides 1 and 2 (3x3; 5x5 and 7x7 at stride 1), padding
  // on any side (past the kernel too), widths past the vector, tall images in several strips,
  // channel multipliers.
  struct Shape {
    int64_t n, c, h, w, mult, r, stride, pt, pb, pl, pr;
  };
  int ran = 0;
  for (const Shape& s : {Shape{2, 5, 15, 17, 1, 3, 1, 1, 1, 1, 1}, Shape{1, 3, 56, 56, 1, 3, 2, 1, 1, 1, 1},
                         Shape{1, 4, 23, 40, 2, 5, 1, 2, 2, 2, 2}, Shape{1, 3, 95, 37, 1, 3, 1, 0, 2, 3, 0},
                         Shape{1, 2, 40, 9, 3, 7, 1, 3, 3, 3, 3}, Shape{1, 2, 12, 113, 1, 7, 1, 4, 1, 0, 5},
                         Shape{1, 6, 7, 7, 1, 3, 2, 1, 1, 1, 1}, Shape{3, 2, 33, 16, 1, 5, 1, 2, 2, 2, 2}}) {
    const ConvProblem p = ConvTester()
                              .input(s.n, s.c, s.h, s.w)
                              .kernel(s.c * s.mult, s.r, s.r)
                              .stride(s.stride)
                              .pad(s.pt, s.pb, s.pl, s.pr)
                              .groups(s.c)
                              .get_problem();
    INFO(to_string(p));
    const std::string impl = ConvTester().problem(p).compare_threads({1, 2, 3}).implementation("direct_depthwise_in_place_")
                                 .check_if_applicable(Algorithm::Direct);
    if (impl.empty()) continue;
    ++ran;
    const auto x = make_data(p.input_elements(), Data::Random, 1);
    const auto w = make_data(p.weight_elements(), Data::Random, 2);
    const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
    PlanOptions in_place, packed;
    in_place.implementation = "direct_depthwise_in_place_";
    packed.implementation = "direct_depthwise_" + std::to_string(s.r) + "x" + std::to_string(s.r) + "_s";
    std::string packed_impl;
    CHECK(run_plan(p, in_place, x, w, b) == run_plan(p, packed, x, w, b, &packed_impl));
    CHECK(starts_with(packed_impl, packed.implementation));
    // Post-ops in registers, and through the stage when the residual is the output itself.
    ConvTester().problem(p).implementation("direct_depthwise_in_place_").activation(Activation::Relu6).residual(0.5f)
        .check(Algorithm::Direct);
    ConvTester().problem(p).implementation("direct_depthwise_in_place_").activation(Activation::Silu)
        .residual(1.0f, true).check(Algorithm::Direct);
  }
  if (fastconv::instruction_set() == "avx512") CHECK(ran == 8);
  // 5x5 and 7x7 at stride 2 stay packed.
  CHECK(ConvTester().input(1, 3, 30, 30).kernel(3, 5, 5).stride(2).pad(2).groups(3).implementation("direct_depthwise_in_place_")
            .check_if_applicable(Algorithm::Direct).empty());
}

TEST_CASE("direct: depthwise over channel vectors", "[isa][direct][depthwise]") {
  // Proposed for output rows of at most half a vector whose padded block fits the stack: channel
  // counts around every vector width (a last block of 1 to L-1 channels), narrow images, any
  // kernel, stride, dilation and padding, batches (3: a block for each of 3 threads).
  const std::string isa = instruction_set();
  const int64_t lanes = isa == "avx512" ? 16 : isa == "avx2" ? 8 : 4;
  int index = 0, ran = 0;
  for (int64_t c : {1, 3, 4, 5, 8, 9, 16, 17, 33})
    for (const auto& [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {7, 7}, {4, 2}, {13, 5}, {9, 16}, {6, 3}})
      for (int64_t k : {1, 3, 5}) {
        ConvTester t;
        const int64_t stride = 1 + index % 3, dil = 1 + (index / 3) % 2;
        t.input(3, c, h, w).kernel(c, k, k + (index % 4 == 3 ? -k + 1 : 0)).groups(c);
        t.stride(stride, 1 + (index + 1) % 2).dilation(dil, 1);
        switch (index % 3) {
          case 0: t.pad(k / 2 * dil); break;
          case 1: t.pad(0, k * dil, 1, k); break;
          default: t.pad(k * dil, 0, 2, 0); break;
        }
        ++index;
        const ConvProblem p = t.get_problem();
        if (p.out_height() < 1 || p.out_width() < 1 || 2 * p.out_width() > lanes ||
            ((h + p.pad_top + p.pad_bottom) * (w + p.pad_left + p.pad_right) + p.out_height() * p.out_width()) * lanes +
                    16 > 8192)
          continue;
        INFO(to_string(p));
        t.seed(uint32_t(300 + index)).implementation("direct_depthwise_channels").compare_threads({1, 2, 3}).check(Algorithm::Direct);
        ++ran;
      }
  CHECK(ran >= (lanes == 16 ? 100 : lanes == 8 ? 50 : 20));
  // Post-ops, with a residual that is the output itself.
  ConvTester().input(2, 21, 7, 3).kernel(21, 3, 3).stride(2).pad(1).groups(21).implementation("direct_depthwise_channels")
      .activation(Activation::Relu6).residual(0.5f, true).check(Algorithm::Direct);
  ConvTester().input(3, 18, 6, 4).kernel(18, 3, 3).stride(1, 2).pad(1).groups(18).implementation("direct_depthwise_channels")
      .activation(Activation::Relu).residual(1.0f, false).check(Algorithm::Direct);
  // The pick where it applies (7x7 outputs with 16 lanes); not proposed: two outputs per channel,
  // rows of 14 (the stencil's), an image whose padded block would not fit the stack.
  if (lanes == 16)
    CHECK(starts_with(ConvTester().input(1, 96, 7, 7).kernel(96, 3, 3).pad(1).groups(96).check(Algorithm::Direct),
                      "direct_depthwise_channels__"));
  for (const ConvTester& t : {ConvTester().input(1, 4, 7, 7).kernel(8, 3, 3).pad(1).groups(4),
                              ConvTester().input(1, 32, 14, 14).kernel(32, 3, 3).pad(1).groups(32),
                              ConvTester().input(1, 4, 80, 8).kernel(4, 3, 3).pad(1).groups(4)}) {
    INFO(to_string(t.get_problem()));
    CHECK(!starts_with(t.check(Algorithm::Direct), "direct_depthwise_channels"));
  }
}

TEST_CASE("direct: dot products of 1x1 images (fully connected layers)", "[isa][direct][dots]") {
  // Input channels around the dot step (32) and the chunk (1024): a tail alone, whole steps, steps
  // and a tail, several chunks; output channels around the tile's MA (4 or 8); one image (the MA x 1
  // tile) and batches that end in a short group of NB. Bits alike for 1, 2 and 3 threads.
  int index = 0;
  for (int64_t c : {1, 5, 31, 32, 33, 100, 1024, 1057, 2100})
    for (int64_t k : {1, 3, 8, 9, 17})
      for (int64_t n : {1, 2, 4, 7}) {
        if (++index % 2 == (c < 1024 ? 1 : 0) && n != 1) continue;  // half the large batches
        INFO("n " << n << " c " << c << " k " << k);
        CHECK(starts_with(ConvTester().input(n, c, 1, 1).kernel(k, 1, 1).bias(index % 3 != 0).seed(uint32_t(index))
                              .implementation("direct_dots").compare_threads({1, 2, 3}).check(Algorithm::Direct),
                          "direct_dots__"));
      }
  // Post-ops, with a residual that is the output itself; strides mean nothing on a 1x1 image.
  ConvTester().input(3, 70, 1, 1).kernel(13, 1, 1).stride(2).implementation("direct_dots")
      .activation(Activation::Relu6).residual(0.5f, true).check(Algorithm::Direct);
  ConvTester().input(5, 40, 1, 1).kernel(9, 1, 1).implementation("direct_dots")
      .activation(Activation::LeakyRelu, 0.1f).residual(1.0f, false).check(Algorithm::Direct);
  // The pick for classifiers at small batches; not proposed with padding, groups or a larger image.
  for (const ConvTester& t : {ConvTester().input(1, 2048, 1, 1).kernel(1000, 1, 1),
                              ConvTester().input(4, 1280, 1, 1).kernel(1000, 1, 1)}) {
    PlanOptions o;
    o.threads = 2;
    CHECK(starts_with(Plan::create(t.get_problem(), o).implementation(), "direct_dots__"));
  }
  for (const ConvTester& t : {ConvTester().input(1, 64, 1, 1).kernel(8, 1, 1).pad(1),
                              ConvTester().input(1, 64, 1, 1).kernel(8, 1, 1).groups(2),
                              ConvTester().input(1, 64, 2, 1).kernel(8, 1, 1)}) {
    INFO(to_string(t.get_problem()));
    CHECK(!starts_with(t.check(Algorithm::Direct), "direct_dots"));
  }
}

TEST_CASE("direct: first layers with few input channels", "[isa][direct][stem]") {
  for (int64_t c : {1, 2, 3, 4}) {
    INFO("channels " << c);
    ConvTester().input(1, c, 47, 45).kernel(16, 7, 7).stride(2).pad(3).seed(uint32_t(c)).check(Algorithm::Direct);
    ConvTester().input(1, c, 59, 63).kernel(12, 11, 11).stride(4).seed(uint32_t(c)).check(Algorithm::Direct);
    ConvTester().input(2, c, 33, 31).kernel(8, 3, 3).stride(2).pad(1).seed(uint32_t(c)).check(Algorithm::Direct);
  }
}

TEST_CASE("direct: groups, ragged output-channel blocks, many input channels", "[isa][direct]") {
  for (int64_t kg : {1, 2, 3, 4, 5, 6, 7, 9, 13})
    ConvTester().input(1, 6, 9, 11).kernel(2 * kg, 3, 3).pad(1).groups(2).seed(uint32_t(kg)).check(Algorithm::Direct);
  // More input channels than one block of the row buffer holds: passes over the output.
  ConvTester().input(1, 300, 12, 30).kernel(8, 3, 3).pad(1).check(Algorithm::Direct);
  ConvTester().input(1, 96, 6, 70).kernel(6, 5, 5).stride(2).pad(2).groups(2).check(Algorithm::Direct);
}

TEST_CASE("direct: kernels too wide or tall for the row buffer", "[isa][direct]") {
  // Under a zero workspace limit the row buffer is the 16 KiB stack tile: these need blocks of
  // kernel rows and of kernel columns.
  for (const ConvTester& t : {ConvTester().input(1, 2, 605, 10).kernel(3, 3, 3).dilation(300, 1).pad(0, 1),
                              ConvTester().input(1, 2, 2, 4300).kernel(3, 2, 3).dilation(1, 2100),
                              ConvTester().input(1, 1, 40, 37).kernel(2, 31, 31).pad(15).dilation(2, 1)}) {
    INFO(to_string(t.get_problem()));
    ConvTester(t).workspace_limit(0).check(Algorithm::Direct);
    ConvTester(t).check(Algorithm::Direct);
  }
}

TEST_CASE("direct: the same bits for 1, 2 and 3 threads and any workspace limit", "[isa][direct]") {
  for (const ConvProblem& p :
       {ConvTester().input(2, 19, 23, 29).kernel(21, 3, 3).pad(1).get_problem(),
        ConvTester().input(1, 3, 61, 67).kernel(24, 7, 7).stride(2).pad(3).get_problem(),    // stem
        ConvTester().input(1, 3, 63, 63).kernel(20, 11, 11).stride(4).get_problem(),         // stem
        ConvTester().input(1, 16, 45, 41).kernel(16, 3, 3).pad(1).groups(16).get_problem(),  // depthwise
        ConvTester().input(1, 8, 30, 33).kernel(16, 5, 5).stride(2).pad(2).groups(8).get_problem(),
        ConvTester().input(1, 300, 12, 30).kernel(9, 3, 3).pad(1).get_problem(),             // passes
        ConvTester().input(1, 2, 5, 90).kernel(6, 3, 5).dilation(1, 9).pad(1, 0).get_problem()}) {
    INFO(to_string(p));
    for (Data kind : {Data::Random, Data::SmallInt}) {
      const auto x = make_data(p.input_elements(), kind, 1);
      const auto w = make_data(p.weight_elements(), kind, 2);
      const auto b = make_data(std::size_t(p.out_channels), kind, 3);
      std::string impl;
      const auto ref = run_direct(p, PlanOptions::kDefaultWorkspaceLimit, 1, x, w, b, &impl);
      for (std::size_t limit : {PlanOptions::kDefaultWorkspaceLimit, std::size_t(0)})
        for (int threads : {1, 2, 3}) {
          INFO("limit " << limit << " threads " << threads);
          std::string other;
          CHECK(run_direct(p, limit, threads, x, w, b, &other) == ref);
          CHECK(other == impl);
        }
    }
  }
}

TEST_CASE("direct: non-finite inputs reach only the outputs whose receptive field holds them", "[isa][direct]") {
  for (const ConvProblem& p : {ConvTester().input(1, 3, 19, 21).kernel(5, 3, 3).stride(2).pad(1).get_problem(),
                               ConvTester().input(1, 4, 15, 17).kernel(4, 5, 5).pad(2).groups(4).get_problem(),
                               ConvTester().input(1, 2, 23, 27).kernel(6, 7, 7).stride(2, 3).dilation(1, 2).pad(3).get_problem()}) {
    INFO(to_string(p));
    const int64_t H = p.in_height, W = p.in_width, P = p.out_height(), Q = p.out_width();
    const int64_t cg = p.in_channels / p.groups, kg = p.out_channels / p.groups;
    auto x = make_data(p.input_elements(), Data::Random, 7);
    const auto w = make_data(p.weight_elements(), Data::Random, 8);
    const auto b = make_data(std::size_t(p.out_channels), Data::Random, 9);
    const int64_t c0 = 1 % p.in_channels, iy0 = H / 2, ix0 = W - 2;
    x[std::size_t((c0 * H + iy0) * W + ix0)] = std::nanf("");
    const auto y = run_direct(p, PlanOptions::kDefaultWorkspaceLimit, 2, x, w, b);
    for (int64_t k = 0; k < p.out_channels; ++k)
      for (int64_t py = 0; py < P; ++py)
        for (int64_t qx = 0; qx < Q; ++qx) {
          bool reaches = k / kg == c0 / cg;
          bool in_field = false;
          for (int64_t r = 0; r < p.kernel_height; ++r)
            for (int64_t s = 0; s < p.kernel_width; ++s)
              in_field |= py * p.stride_h - p.pad_top + r * p.dilation_h == iy0 &&
                          qx * p.stride_w - p.pad_left + s * p.dilation_w == ix0;
          reaches = reaches && in_field;
          INFO("k " << k << " p " << py << " q " << qx);
          CHECK(std::isnan(y[std::size_t((k * P + py) * Q + qx)]) == reaches);
        }
  }
}
