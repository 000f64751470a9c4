// Fused post-ops (activation, residual) and padding modes: every algorithm against the reference
// followed by the post-ops in double, on each instruction set ([isa]: once per FASTCONV_MAX_ISA).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "conv_tester.hpp"
#include "core/epilogue.hpp"
#include "direct/reference.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;

namespace {

struct Case {
  Algorithm algorithm;
  const char* implementation;  // prefix, or ""
  ConvTester tester;
};

// One or more problems per algorithm and code path: the GEMM with one and with several depth
// blocks (a residual that is the output seeds the accumulation there), Winograd F(2x2) and F(4x4),
// Winograd on a dilated layer (phases), FFT, the direct tile with one and with several tap blocks,
// and the depthwise strip.
std::vector<Case> algorithm_cases() {
  using T = ConvTester;
  std::vector<Case> cases = {
      {Algorithm::Im2col, "", T().input(2, 5, 11, 13).kernel(7, 3, 3).pad(1)},
      {Algorithm::Im2col, "", T().input(1, 300, 5, 7).kernel(13, 1, 1)},  // 1x1, depth past KC
      {Algorithm::Im2col, "", T().input(1, 40, 9, 10).kernel(17, 3, 3).stride(2).pad(1)},  // depth 360 > KC
      {Algorithm::Winograd, "winograd_f2x2", T().input(1, 6, 13, 37).kernel(9, 3, 3).pad(1)},
      {Algorithm::Winograd, "winograd_f4x4", T().input(2, 5, 17, 14).kernel(6, 3, 3).pad(1)},
      {Algorithm::Winograd, "", T().input(1, 4, 16, 15).kernel(5, 3, 3).pad(2).dilation(2)},
      {Algorithm::Winograd, "winograd_f4x4", T().input(2, 5, 15, 14).kernel(6, 3, 3).pad(6).dilation(6, 5)},
      {Algorithm::FFT, "", T().input(1, 3, 21, 19).kernel(4, 7, 7).pad(3)},
      {Algorithm::Direct, "", T().input(1, 3, 17, 23).kernel(8, 3, 3).pad(1)},
      {Algorithm::Direct, "", T().input(1, 40, 9, 11).kernel(9, 5, 5).pad(2)},  // several tap blocks
      {Algorithm::Direct, "", T().input(2, 8, 15, 37).kernel(8, 3, 3).pad(1).groups(8)},  // depthwise
      {Algorithm::Direct, "", T().input(1, 6, 14, 20).kernel(6, 5, 5).stride(2).pad(2).groups(6)},
  };
  // The pixel-major GEMMs, whose transposes into y apply clamp activations and the residual in
  // registers where the kernel has the fused transpose (AVX-512): 1x1 packed, and implicit 3x3/s2.
  // One-dimensional Winograd, both orientations (1 x R runs on the transposed image).
  cases.push_back({Algorithm::Winograd, "winograd_1d", T().input(1, 9, 17, 15).kernel(10, 7, 1).pad(3, 0)});
  cases.push_back({Algorithm::Winograd, "winograd_1d", T().input(2, 9, 13, 17).kernel(10, 1, 7).pad(0, 3)});
  if (detail::best_isa() >= detail::Isa::Avx512)
    cases.push_back({Algorithm::Im2col, "im2col_pixels", T().input(2, 24, 9, 9).kernel(40, 1, 1)});
  if (detail::best_isa() >= detail::Isa::Avx2)
    cases.push_back({Algorithm::Im2col, "im2col_implicit", T().input(1, 12, 17, 15).kernel(36, 3, 3).stride(2).pad(1)});
  return cases;
}

PostOps activation_of(Activation a) {
  PostOps po;
  po.activation = a;
  if (a == Activation::LeakyRelu) po.alpha = 0.125f;
  if (a == Activation::Clamp) po.alpha = -2, po.beta = 3;
  return po;
}

const Activation kAllActivations[] = {Activation::None, Activation::Relu,  Activation::Relu6,     Activation::LeakyRelu,
                                      Activation::Clamp, Activation::Silu, Activation::Hardswish, Activation::Gelu,
                                      Activation::Sigmoid, Activation::Tanh};

}  // namespace

TEST_CASE("post-ops: each activation in every algorithm matches the reference", "[isa][post_ops]") {
  for (const Case& c : algorithm_cases()) {
    for (Activation a : kAllActivations) {
      ConvTester t = c.tester;
      t.post_ops(activation_of(a)).implementation(c.implementation);
      INFO(to_string(t.get_problem()) << " " << to_string(a));
      CHECK(!t.check(c.algorithm).empty());
    }
  }
}

TEST_CASE("post-ops: residual, separate and aliased, with scale, in every algorithm", "[isa][post_ops]") {
  int index = 0;
  for (const Case& c : algorithm_cases()) {
    for (bool aliased : {false, true}) {
      for (float scale : {1.0f, 0.5f, -1.75f}) {
        const Activation a = index % 3 == 0 ? Activation::Relu : index % 3 == 1 ? Activation::None : Activation::Silu;
        ConvTester t = c.tester;
        t.post_ops(activation_of(a)).residual(scale, aliased).implementation(c.implementation).bias(index % 4 != 3);
        t.seed(uint32_t(77 + index++));
        INFO(to_string(t.get_problem()) << " aliased " << aliased << " scale " << scale);
        CHECK(!t.check(c.algorithm).empty());
      }
    }
  }
}

TEST_CASE("post-ops: 1, 2 and 3 threads give the same bits", "[isa][post_ops][threads]") {
  for (const Case& c : algorithm_cases())
    for (bool aliased : {false, true}) {
      ConvTester t = c.tester;
      t.post_ops(activation_of(Activation::Gelu)).residual(0.5f, aliased).implementation(c.implementation);
      t.threads(1).compare_threads({2, 3}).check(c.algorithm);
    }
}

// The order of operations, defined once (design section 10): z = the convolution with its bias as
// the algorithm stores it without post-ops; y = act(fma(scale, r, z)) through the same vectorised
// kernel. Bias and activation: every algorithm's fused output is bitwise that kernel on its unfused
// output. A separate residual: the same. A residual that is the output itself: bitwise the same for
// Winograd, FFT and the depthwise strip (their outputs are staged before they go to y); the GEMM and
// the direct tile cannot keep the residual apart while they accumulate into y, so there the residual
// seeds the accumulation (scale * r + partial sums ... + bias, then act): within the tolerance only.
TEST_CASE("post-ops: fused output is bitwise the vectorised epilogue on the unfused output", "[isa][post_ops][bitwise]") {
  int index = 0;
  for (const Case& c : algorithm_cases()) {
    for (Activation a : {Activation::Relu, Activation::Relu6, Activation::Gelu, Activation::Sigmoid, Activation::Hardswish}) {
      for (int mode = 0; mode < 3; ++mode) {  // 0: activation only, 1: separate residual, 2: aliased
        const ConvProblem& p = c.tester.get_problem();
        const auto x = testing::make_data(p.input_elements(), testing::Data::Random, 10 + index);
        const auto w = testing::make_data(p.weight_elements(), testing::Data::Random, 20 + index);
        const auto b = testing::make_data(std::size_t(p.out_channels), testing::Data::Random, 30 + index);
        const auto r = testing::make_data(p.output_elements(), testing::Data::Random, 40 + index);
        ++index;
        PostOps po = activation_of(a);
        if (mode > 0) po.residual = true, po.residual_scale = 0.75f;
        PlanOptions plain;
        plain.algorithm = c.algorithm;
        plain.implementation = c.implementation;
        const Plan unfused = Plan::create(p, plain);
        PlanOptions fused_options = plain;
        fused_options.post_ops = po;
        fused_options.implementation = unfused.implementation();
        const Plan fused = Plan::create(p, fused_options);
        std::vector<float> want(p.output_elements()), got = r;
        unfused.execute(x.data(), unfused.pack_weights(w.data(), b.data()), want.data());
        const detail::Epilogue e = detail::make_epilogue(po, detail::best_isa());
        e.apply(want.data(), r.data(), int64_t(want.size()));
        const PackedWeights packed = fused.pack_weights(w.data(), b.data());
        if (mode == 0) fused.execute(x.data(), packed, got.data());
        if (mode == 1) fused.execute(x.data(), packed, got.data(), r.data());
        if (mode == 2) fused.execute(x.data(), packed, got.data(), got.data());
        INFO(fused.implementation() << " on " << to_string(p) << " " << to_string(po) << " mode " << mode);
        const bool staged = c.algorithm == Algorithm::Winograd || c.algorithm == Algorithm::FFT || p.groups > 1;
        if (mode < 2 || staged) {
          REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
        } else {
          double worst = 0, scale = 0;
          for (std::size_t i = 0; i < got.size(); ++i)
            worst = std::max(worst, std::fabs(double(got[i]) - want[i])), scale = std::max(scale, std::fabs(double(want[i])));
          REQUIRE(worst <= 1e-5 * std::max(scale, 1.0));
        }
      }
    }
  }
}

TEST_CASE("post-ops: activations saturate, never turning a finite value into NaN", "[isa][post_ops][nonfinite]") {
  const float values[] = {88.0f, -88.0f, 89.0f, -89.0f, 100.0f, -100.0f, 1e30f, -1e30f, INFINITY, -INFINITY,
                          3.0f,  -3.0f,  0.0f,  -0.0f,  1e-30f, -1e-30f, 20.0f, -20.0f, 9.5f, -9.5f, 3.4e38f, -3.4e38f};
  const std::size_t n = sizeof values / sizeof values[0];
  for (Activation a : kAllActivations) {
    const PostOps po = activation_of(a);
    const detail::Epilogue e = detail::make_epilogue(po, detail::best_isa());
    std::vector<float> y(values, values + n);
    e.apply(y.data(), nullptr, int64_t(n));
    for (std::size_t i = 0; i < n; ++i) {
      const double want = detail::activate_reference(e.params, double(values[i]));
      INFO(to_string(a) << "(" << values[i] << ") = " << y[i] << ", want " << want);
      REQUIRE(!std::isnan(y[i]));
      if (std::isinf(want)) {
        REQUIRE(y[i] == float(want));
      } else {
        REQUIRE(std::fabs(double(y[i]) - want) <= 1e-6 * std::max(1.0, std::fabs(want)));
      }
    }
    // NaN stays NaN.
    float nan = std::nanf("");
    e.apply(&nan, nullptr, 1);
    if (a != Activation::None) CHECK(std::isnan(nan));
  }
}

TEST_CASE("post-ops: activations against double over a range, every row length", "[isa][post_ops]") {
  for (Activation a : kAllActivations) {
    const detail::Epilogue e = detail::make_epilogue(activation_of(a), detail::best_isa());
    for (int64_t n : {1, 3, 7, 8, 15, 16, 17, 33, 100}) {
      std::vector<float> y(static_cast<std::size_t>(n)), src(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) src[std::size_t(i)] = y[std::size_t(i)] = -12.0f + 24.0f * float(i) / float(n);
      e.apply(y.data(), nullptr, n);
      for (int64_t i = 0; i < n; ++i) {
        const double want = detail::activate_reference(e.params, double(src[std::size_t(i)]));
        INFO(to_string(a) << "(" << src[std::size_t(i)] << ") = " << y[std::size_t(i)] << ", want " << want);
        REQUIRE(std::fabs(double(y[std::size_t(i)]) - want) <= 2e-6 * std::max(1.0, std::fabs(want)));
      }
    }
  }
}

TEST_CASE("padding modes: every algorithm matches the reference", "[isa][padding_mode]") {
  using T = ConvTester;
  struct PadCase {
    Algorithm algorithm;
    ConvTester tester;
  };
  // Odd sizes, padding as large as each mode allows (reflect: size - 1; circular: size), stride,
  // dilation, asymmetric padding, depthwise.
  const std::vector<PadCase> cases = {
      {Algorithm::Direct, T().input(1, 3, 7, 9).kernel(4, 3, 3).pad(1)},
      {Algorithm::Direct, T().input(2, 2, 5, 6).kernel(3, 5, 5).pad(4, 4, 5, 5)},
      {Algorithm::Direct, T().input(1, 3, 11, 9).kernel(5, 3, 3).stride(2).dilation(2).pad(2, 3, 1, 2)},
      {Algorithm::Direct, T().input(1, 6, 13, 17).kernel(6, 3, 3).pad(2).groups(6)},
      {Algorithm::Im2col, T().input(1, 3, 7, 9).kernel(4, 3, 3).pad(1)},
      {Algorithm::Im2col, T().input(2, 3, 5, 4).kernel(5, 3, 3).stride(2, 1).pad(4, 4, 3, 3)},
      {Algorithm::Im2col, T().input(1, 4, 8, 7).kernel(3, 1, 1).pad(1)},
      {Algorithm::Winograd, T().input(1, 4, 9, 11).kernel(5, 3, 3).pad(1)},
      {Algorithm::Winograd, T().input(1, 3, 6, 5).kernel(2, 3, 3).pad(5, 5, 4, 4)},
      {Algorithm::Winograd, T().input(1, 3, 12, 13).kernel(4, 3, 3).pad(2).dilation(2)},
      {Algorithm::FFT, T().input(1, 2, 15, 13).kernel(3, 7, 7).pad(3)},
      {Algorithm::FFT, T().input(1, 2, 9, 8).kernel(2, 5, 5).pad(8, 8, 7, 7)},
  };
  int index = 0;
  for (const PadCase& c : cases) {
    for (PadMode m : {PadMode::Zeros, PadMode::Reflect, PadMode::Replicate, PadMode::Circular}) {
      ConvTester t = c.tester;
      ConvProblem p = t.get_problem();
      p.padding_mode = m;
      // Shrink the padding to what the mode allows.
      const int64_t lim_h = m == PadMode::Reflect ? p.in_height - 1 : m == PadMode::Circular ? p.in_height : INT64_MAX;
      const int64_t lim_w = m == PadMode::Reflect ? p.in_width - 1 : m == PadMode::Circular ? p.in_width : INT64_MAX;
      p.pad_top = std::min(p.pad_top, lim_h), p.pad_bottom = std::min(p.pad_bottom, lim_h);
      p.pad_left = std::min(p.pad_left, lim_w), p.pad_right = std::min(p.pad_right, lim_w);
      t.problem(p).seed(uint32_t(900 + index));
      if (index % 4 == 1) t.post_ops(activation_of(Activation::Relu)).residual(0.5f, index % 8 == 1);
      if (index % 5 == 0) t.compare_threads({1, 2, 3});
      ++index;
      INFO(to_string(p));
      CHECK(!t.check(c.algorithm).empty());
    }
  }
}

TEST_CASE("padding modes: the reference pads as PyTorch does", "[padding_mode]") {
  // A 1x1 kernel of weight 1 copies the padded input: the border shows the mode.
  ConvProblem p = ConvTester().input(1, 1, 2, 3).kernel(1, 1, 1).pad(2).get_problem();
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const std::vector<float> w = {1};
  auto row = [&](PadMode m, int64_t i) {
    p.padding_mode = m;
    std::vector<double> y(p.output_elements());
    detail::reference_conv2d(p, x.data(), w.data(), nullptr, y.data());
    return std::vector<double>(y.begin() + i * 7, y.begin() + (i + 1) * 7);
  };
  // Row 2 of the padded 6x7 image is input row 0.
  CHECK(row(PadMode::Zeros, 2) == std::vector<double>{0, 0, 1, 2, 3, 0, 0});
  CHECK(row(PadMode::Replicate, 2) == std::vector<double>{1, 1, 1, 2, 3, 3, 3});
  CHECK(row(PadMode::Circular, 2) == std::vector<double>{2, 3, 1, 2, 3, 1, 2});
  CHECK(row(PadMode::Circular, 1) == std::vector<double>{5, 6, 4, 5, 6, 4, 5});
  p.padding_mode = PadMode::Reflect;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("pad_top=2") && Catch::Contains("reflect"));
  p.pad_top = p.pad_bottom = 1;
  std::vector<double> y(p.output_elements());
  detail::reference_conv2d(p, x.data(), w.data(), nullptr, y.data());
  CHECK(std::vector<double>(y.begin(), y.begin() + 7) == std::vector<double>{6, 5, 4, 5, 6, 5, 4});
}

TEST_CASE("padding modes: validation, names, equality and hash", "[padding_mode][api]") {
  ConvProblem p = ConvTester().input(1, 2, 5, 6).kernel(3, 3, 3).pad(5, 5, 6, 6).get_problem();
  p.padding_mode = PadMode::Reflect;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("pad_top=5") && Catch::Contains("in_height=5"));
  p.pad_top = p.pad_bottom = 4;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("pad_left=6") && Catch::Contains("in_width=6"));
  p.padding_mode = PadMode::Circular;
  p.validate();  // circular allows padding up to the size
  p.pad_top = 5, p.pad_right = 7;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("pad_right=7") && Catch::Contains("circular"));
  p.pad_right = 6;
  p.padding_mode = PadMode::Replicate;
  p.pad_top = 40;
  p.validate();  // replicate: any padding
  p.padding_mode = static_cast<PadMode>(9);
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("padding_mode"));
  // The name, parse, == and hash tell the modes apart.
  ConvProblem a = ConvTester().input(1, 8, 9, 9).kernel(8, 3, 3).pad(1).get_problem(), b = a;
  b.padding_mode = PadMode::Reflect;
  CHECK(a != b);
  CHECK(std::hash<ConvProblem>()(a) != std::hash<ConvProblem>()(b));
  CHECK(to_string(b) == "n1c8h9w9k8r3s3_p1_reflect");
  for (PadMode m : {PadMode::Zeros, PadMode::Reflect, PadMode::Replicate, PadMode::Circular}) {
    b.padding_mode = m;
    CHECK(parse_problem(to_string(b)) == b);
    CHECK(parse_pad_mode(to_string(m)) == m);
  }
  CHECK_THROWS_WITH(parse_pad_mode("mirror"), Catch::Contains("mirror"));
  CHECK_THROWS_AS(parse_problem("n1c8h9w9k8r3s3_p1_mirror"), Error);
  // The planner says how it pads.
  b.padding_mode = PadMode::Reflect;
  CHECK_THAT(Plan::create(b).describe(), Catch::Contains("padded copy") && Catch::Contains("reflect"));
}

TEST_CASE("post-ops: parsing, names and bad input", "[post_ops][api]") {
  CHECK(parse_post_ops("relu").activation == Activation::Relu);
  CHECK(parse_post_ops("").activation == Activation::None);
  CHECK(parse_post_ops("none").activation == Activation::None);
  CHECK(parse_post_ops("leaky_relu").alpha == 0.01f);
  CHECK(parse_post_ops("leaky_relu:0.2").alpha == 0.2f);
  const PostOps c = parse_post_ops("clamp:-1,6");
  CHECK((c.activation == Activation::Clamp && c.alpha == -1 && c.beta == 6));
  for (Activation a : kAllActivations) CHECK(parse_post_ops(to_string(a) + (a == Activation::Clamp ? ":0,1" : "")).activation == a);
  CHECK_THROWS_WITH(parse_post_ops("swish"), Catch::Contains("swish"));
  CHECK_THROWS_WITH(parse_post_ops("clamp:6,0"), Catch::Contains("above"));
  CHECK_THROWS_WITH(parse_post_ops("clamp:1"), Catch::Contains("LO,HI"));
  CHECK_THROWS_WITH(parse_post_ops("relu:1"), Catch::Contains("takes no argument"));
  CHECK_THROWS_WITH(parse_post_ops("leaky_relu:abc"), Catch::Contains("abc"));
  CHECK_THROWS_WITH(parse_post_ops("leaky_relu:inf"), Catch::Contains("finite"));
  PostOps po = parse_post_ops("clamp:0,6");
  po.residual = true, po.residual_scale = 0.5f;
  CHECK(to_string(po) == "clamp:0,6+residual*0.5");

  const ConvProblem p = ConvTester().input(1, 4, 6, 6).kernel(4, 3, 3).pad(1).get_problem();
  PlanOptions o;
  o.post_ops.activation = Activation::Clamp, o.post_ops.alpha = 6, o.post_ops.beta = 0;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("post_ops.alpha=6"));
  o.post_ops.alpha = NAN;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("post_ops.alpha=nan"));
  o.post_ops = PostOps();
  o.post_ops.activation = Activation::LeakyRelu, o.post_ops.alpha = INFINITY;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("post_ops.alpha"));
  o.post_ops = PostOps();
  o.post_ops.activation = static_cast<Activation>(42);
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("post_ops.activation=42"));
  o.post_ops = PostOps();
  o.post_ops.residual = true, o.post_ops.residual_scale = NAN;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("residual_scale"));

  // A residual plan needs one; the others refuse one; nothing is written on error.
  const auto x = testing::make_data(p.input_elements(), testing::Data::Random, 1);
  const auto w = testing::make_data(p.weight_elements(), testing::Data::Random, 2);
  std::vector<float> y(p.output_elements(), 7.0f), r(p.output_elements(), 1.0f);
  o.post_ops = PostOps();
  o.post_ops.residual = true;
  const Plan with = Plan::create(p, o);
  const Plan without = Plan::create(p);
  CHECK_THAT(with.describe(), Catch::Contains("post-ops residual"));
  CHECK_THROWS_WITH(with.execute(x.data(), with.pack_weights(w.data(), nullptr), y.data()), Catch::Contains("residual=null"));
  CHECK_THROWS_WITH(with.execute(x.data(), with.pack_weights(w.data(), nullptr), y.data(), nullptr),
                    Catch::Contains("residual=null"));
  CHECK_THROWS_WITH(without.execute(x.data(), without.pack_weights(w.data(), nullptr), y.data(), r.data()),
                    Catch::Contains("without post_ops.residual"));
  std::vector<float> big(2 * p.output_elements(), 0.0f);
  CHECK_THROWS_WITH(with.execute(x.data(), with.pack_weights(w.data(), nullptr), big.data(), big.data() + 3),
                    Catch::Contains("overlaps"));
  for (float v : y) REQUIRE(v == 7.0f);
  for (float v : big) REQUIRE(v == 0.0f);
  with.execute(x.data(), with.pack_weights(w.data(), nullptr), y.data(), r.data());
  with.execute(x.data(), with.pack_weights(w.data(), nullptr), y.data(), y.data());
}

TEST_CASE("post-ops: plans and wisdom tell post-ops apart", "[post_ops][api]") {
  const ConvProblem p = ConvTester().input(1, 8, 10, 10).kernel(8, 3, 3).pad(1).get_problem();
  const auto x = testing::make_data(p.input_elements(), testing::Data::Random, 1);
  const auto w = testing::make_data(p.weight_elements(), testing::Data::Random, 2);
  std::vector<float> y1(p.output_elements()), y2(p.output_elements());
  PlanOptions o;
  conv2d(p, x.data(), w.data(), nullptr, y1.data(), o);
  o.post_ops = parse_post_ops("relu");
  conv2d(p, x.data(), w.data(), nullptr, y2.data(), o);  // the cache must not hand back the plain plan
  bool negative = false;
  for (std::size_t i = 0; i < y1.size(); ++i) {
    negative |= y1[i] < 0;
    REQUIRE(y2[i] == std::max(y1[i], 0.0f));
  }
  CHECK(negative);
}
