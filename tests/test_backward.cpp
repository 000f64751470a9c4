// The backward directions (design section 11): the reference's gradients against finite
// differences, every algorithm against the reference over the sweep, bitwise reproducibility over
// threads and budgets, the memory budget, and the errors.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <fstream>
#include <string>

#include "conv_tester.hpp"
#include "direct/reference.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;
using fastconv::testing::Data;
using fastconv::testing::make_data;
using fastconv::testing::peak_rss;
using fastconv::testing::wake_thread_pool;

namespace {

// L = sum(y * g) with y = conv(x, w) + b by the reference.
double loss(const ConvProblem& p, const std::vector<float>& x, const std::vector<float>& w,
            const std::vector<float>& b, const std::vector<float>& g) {
  std::vector<double> y(p.output_elements());
  detail::reference_conv2d(p, x.data(), w.data(), b.data(), y.data());
  double l = 0;
  for (std::size_t i = 0; i < y.size(); ++i) l += y[i] * double(g[i]);
  return l;
}

std::vector<ConvProblem> tiny_problems() {
  return {ConvTester().input(1, 2, 5, 4).kernel(3, 3, 2).pad(1, 0, 0, 1).get_problem(),
          ConvTester().input(2, 4, 6, 7).kernel(2, 3, 3).stride(2, 3).pad(1).dilation(1, 2).groups(2).get_problem(),
          ConvTester().input(1, 3, 7, 5).kernel(3, 2, 3).stride(3, 1).pad(0, 2, 1, 1).groups(3).get_problem()};
}

// Transposed-convolution-like shapes: strides 1-4, output_padding through H and W (rows no output
// reaches), asymmetric and beyond-the-kernel padding, dilations, groups and depthwise, odd sizes.
std::vector<ConvProblem> backward_sweep() {
  using T = ConvTester;
  std::vector<ConvProblem> out;
  for (int64_t s : {1, 2, 3, 4}) {
    out.push_back(T().input(2, 5, 13 + s, 11).kernel(7, 3, 3).stride(s).pad(1).get_problem());
    out.push_back(T().input(1, 4, 17, 18).kernel(6, 4, 4).stride(s).pad(1, 2, 0, 1).get_problem());
    out.push_back(T().input(1, 6, 16, 15).kernel(4, 3, 5).stride(s, 1).pad(2).dilation(2, 1).get_problem());
    out.push_back(T().input(1, 8, 19, 17).kernel(8, 3, 3).stride(s).pad(1).groups(8).get_problem());  // depthwise
    out.push_back(T().input(2, 6, 12, 9).kernel(9, 1, 1).stride(s).get_problem());                     // 1x1
    out.push_back(T().input(1, 6, 14, 14).kernel(4, 5, 5).stride(s).pad(2).groups(2).get_problem());
    // output_padding: H, W one past what the output needs (the last row/column gets only zeros).
    out.push_back(T().input(1, 3, 2 * s + 4, 2 * s + 5).kernel(5, 3, 3).stride(s).pad(1).get_problem());
  }
  out.push_back(T().input(1, 32, 9, 9).kernel(40, 3, 3).pad(1).get_problem());              // Winograd-sized
  out.push_back(T().input(1, 2, 40, 37).kernel(3, 15, 15).pad(7).get_problem());            // FFT-sized
  out.push_back(T().input(1, 3, 9, 8).kernel(2, 2, 2).pad(2, 1, 0, 2).get_problem());       // padding > dil*(R-1): crop
  out.push_back(T().input(1, 3, 4, 6).kernel(2, 3, 3).pad(5, 0, 0, 4).get_problem());
  out.push_back(T().input(2, 3, 35, 35).kernel(5, 11, 11).stride(4).get_problem());
  for (int64_t w : {1, 7, 17, 33, 65}) out.push_back(T().input(1, 3, 5, w).kernel(5, 3, 3).pad(1).get_problem());
  return out;
}

}  // namespace

TEST_CASE("backward: direction names round-trip", "[backward]") {
  for (Direction d : {Direction::Forward, Direction::BackwardData, Direction::BackwardWeights})
    CHECK(parse_direction(to_string(d)) == d);
  CHECK(to_string(Direction::BackwardData) == "backward-data");
  CHECK_THROWS_WITH(parse_direction("sideways"), Catch::Contains("direction 'sideways'"));
}

TEST_CASE("backward: the reference gradients equal finite differences of the reference forward", "[backward][reference]") {
  // Small integers and a step of 1: the loss is linear in x and in w, so the central difference is
  // exact in double and must equal the gradient exactly.
  for (const ConvProblem& p : tiny_problems()) {
    INFO(to_string(p));
    auto x = make_data(p.input_elements(), Data::SmallInt, 1);
    auto w = make_data(p.weight_elements(), Data::SmallInt, 2);
    auto b = make_data(std::size_t(p.out_channels), Data::SmallInt, 3);
    const auto g = make_data(p.output_elements(), Data::SmallInt, 4);
    std::vector<double> dx(p.input_elements()), dw(p.weight_elements()), db(std::size_t(p.out_channels));
    detail::reference_backward_data(p, g.data(), w.data(), nullptr, dx.data());
    detail::reference_backward_weights(p, x.data(), g.data(), dw.data(), db.data());
    auto central = [&](std::vector<float>& v, std::size_t i) {
      const float keep = v[i];
      v[i] = keep + 1;
      const double up = loss(p, x, w, b, g);
      v[i] = keep - 1;
      const double down = loss(p, x, w, b, g);
      v[i] = keep;
      return (up - down) / 2;
    };
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(central(x, i) == dx[i]);
    for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(central(w, i) == dw[i]);
    for (std::size_t i = 0; i < b.size(); ++i) REQUIRE(central(b, i) == db[i]);
  }
}

TEST_CASE("backward-data: every algorithm against the reference, 1/2/3 threads bitwise", "[isa][backward]") {
  int ran[4] = {};
  for (const ConvProblem& p : backward_sweep()) {
    for (Algorithm a : {Algorithm::Direct, Algorithm::Im2col, Algorithm::Winograd, Algorithm::FFT}) {
      for (bool bias : {false, true}) {
        const std::string impl =
            ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).check_backward_data_if_applicable(a);
        if (!impl.empty()) ++ran[static_cast<int>(a) - 1];
      }
    }
  }
  // Every algorithm served some phase of the sweep.
  for (int n : ran) CHECK(n > 0);
  // Kernels no larger than their stride as one 1x1 convolution: patchify (kernel = stride), gaps
  // between patches (uncovered pixels get the bias), padding that crops patches, rows past the last
  // patch, non-square strides, batches; and it declines where the kernel overlaps itself.
  int patches = 0;
  for (const ConvProblem& p :
       {ConvTester().input(2, 3, 32, 32).kernel(20, 4, 4).stride(4).get_problem(),
        ConvTester().input(1, 5, 23, 19).kernel(7, 2, 3).stride(3, 4).pad(1, 0, 2, 1).get_problem(),
        ConvTester().input(3, 4, 17, 35).kernel(33, 16, 16).stride(16).get_problem(),
        ConvTester().input(1, 6, 9, 9).kernel(5, 1, 1).stride(2).get_problem(),
        ConvTester().input(1, 6, 9, 9).kernel(5, 3, 3).stride(2).get_problem(),
        ConvTester().input(1, 6, 12, 12).kernel(6, 2, 2).stride(2).groups(2).get_problem()})
    for (bool bias : {false, true})
      patches += !ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).implementation("bwd_data_patches")
                      .check_backward_data_if_applicable(Algorithm::Im2col).empty();
  CHECK(patches == 8);
}

TEST_CASE("backward-data: depthwise at stride 2 straight from dy", "[isa][backward][depthwise]") {
  // Kernels 1x1 to 5x4 (both row and column parities), asymmetric and beyond-the-kernel padding,
  // odd and even widths past every vector (both column phases' last lanes), batches, bias.
  int ran = 0;
  for (int64_t w : {1, 2, 7, 16, 17, 33, 34, 70})
    for (const auto& [r, s, pt, pb, pl, pr] : {std::array<int64_t, 6>{3, 3, 1, 1, 1, 1}, {1, 1, 0, 0, 0, 0},
                                               {2, 2, 0, 1, 1, 0}, {5, 4, 2, 3, 1, 2}, {3, 1, 2, 0, 0, 1}})
      for (bool bias : {false, true}) {
        const ConvProblem p =
            ConvTester().input(1 + w % 3, 6, 9 + w % 4, w).kernel(6, r, s).stride(2).pad(pt, pb, pl, pr).groups(6).get_problem();
        if (p.out_height() < 1 || p.out_width() < 1) continue;
        ran += !ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).implementation("bwd_data_depthwise_s2")
                    .check_backward_data_if_applicable(Algorithm::Direct).empty();
      }
  CHECK(ran > 60);
  // Declines: a channel multiplier, stride 1, dilation.
  for (const ConvProblem& p : {ConvTester().input(1, 4, 9, 9).kernel(8, 3, 3).stride(2).groups(4).get_problem(),
                               ConvTester().input(1, 4, 9, 9).kernel(4, 3, 3).groups(4).get_problem(),
                               ConvTester().input(1, 4, 9, 9).kernel(4, 3, 3).stride(2).dilation(2).groups(4).get_problem()})
    CHECK(ConvTester().problem(p).implementation("bwd_data_depthwise_s2").check_backward_data_if_applicable(Algorithm::Direct)
              .empty());
}

TEST_CASE("backward-data: the foundation sweep", "[isa][backward]") {
  for (const ConvProblem& p : testing::foundation_sweep())
    for (Algorithm a : {Algorithm::Direct, Algorithm::Im2col, Algorithm::Winograd, Algorithm::FFT})
      ConvTester().problem(p).check_backward_data_if_applicable(a);
  for (const ConvProblem& p : testing::foundation_sweep())
    ConvTester().problem(p).implementation("bwd_data_patches").check_backward_data_if_applicable(Algorithm::Im2col);
}

TEST_CASE("backward-weights: every algorithm against the reference, 1/2/3 threads bitwise", "[isa][backward]") {
  int dot = 0, depthwise = 0;
  for (const ConvProblem& p : backward_sweep())
    for (bool bias : {false, true}) {
      ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).check_backward_weights(Algorithm::Direct);
      ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).implementation("bwd_weights_gemm")
          .check_backward_weights(Algorithm::Im2col);
      dot += !ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).implementation("bwd_weights_dot")
                  .check_backward_weights_if_applicable(Algorithm::Im2col).empty();
      depthwise += !ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3})
                        .implementation("bwd_weights_depthwise").check_backward_weights_if_applicable(Algorithm::Direct)
                        .empty();
    }
  CHECK(dot > 0);
  CHECK(depthwise > 0);
  // The sliced GEMM (at least 4 pixel blocks of 256): slices that do not divide the blocks, images
  // split across slices, strides, groups, 1x1, a column count past NR, a channel count past MR.
  int sliced = 0;
  for (const ConvProblem& p :
       {ConvTester().input(4, 16, 40, 40).kernel(24, 3, 3).pad(1).get_problem(),
        ConvTester().input(3, 6, 23, 41).kernel(13, 3, 5).stride(1, 2).pad(1, 2, 0, 1).dilation(2, 1).get_problem(),
        ConvTester().input(2, 12, 30, 35).kernel(10, 5, 5).stride(2).pad(2).groups(2).get_problem(),
        ConvTester().input(5, 7, 17, 29).kernel(9, 1, 1).get_problem(),
        ConvTester().input(1, 3, 67, 61).kernel(5, 7, 7).stride(2).pad(3).get_problem(),
        // 7x7 images, 5 to a pixel block: 4 blocks.
        ConvTester().input(20, 8, 7, 7).kernel(12, 3, 3).pad(1).get_problem()})
    for (bool bias : {false, true})
      sliced += !ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).implementation("bwd_weights_sliced")
                     .check_backward_weights_if_applicable(Algorithm::Im2col).empty();
  CHECK(sliced == 12);
  // The outer-product form: output channels past every vector and tile (K = 10, 64, 97: the wide
  // tiles, then one vector at a time), taps past every tile (5x5x3 = 75, 7x7x3 = 147), strides 1-4
  // and 5 (column phases: vectors, the strided copy, element by element), dilations, asymmetric
  // padding, images, pixel blocks of several rows (a long dy row block) and the rows' last block.
  int outer = 0;
  for (const ConvProblem& p :
       {ConvTester().input(4, 3, 40, 31).kernel(10, 5, 5).stride(3).pad(2).get_problem(),
        ConvTester().input(1, 3, 45, 47).kernel(64, 7, 7).stride(2).pad(3).get_problem(),
        ConvTester().input(2, 3, 37, 29).kernel(97, 4, 4).stride(4).get_problem(),
        ConvTester().input(1, 5, 31, 33).kernel(33, 3, 5).stride(1, 5).pad(1, 0, 2, 3).dilation(2, 1).get_problem(),
        ConvTester().input(3, 2, 9, 70).kernel(17, 2, 3).stride(2, 1).dilation(1, 3).pad(0, 1, 3, 0).get_problem(),
        ConvTester().input(1, 4, 150, 150).kernel(16, 3, 3).pad(1).get_problem(),
        // dw of 9 MiB: one slice, its tiles in groups
        ConvTester().input(1, 512, 4, 5).kernel(520, 3, 3).pad(1).get_problem(),
        // Tiles of channels at one kernel tap, skipping the pixels that read padding: strides,
        // dilations, asymmetric padding, an ASPP-like dilation 12 where corner taps skip most pixels.
        ConvTester().input(2, 24, 21, 19).kernel(40, 3, 3).stride(2, 1).pad(2, 0, 3, 1).dilation(2, 3).get_problem(),
        ConvTester().input(1, 12, 30, 30).kernel(64, 3, 3).pad(12).dilation(12).get_problem()})
    for (bool bias : {false, true})
      outer += !ConvTester().problem(p).bias(bias).compare_threads({1, 2, 3}).implementation("bwd_weights_outer")
                    .check_backward_weights_if_applicable(Algorithm::Direct).empty();
  CHECK(outer == 18);
  // Small images go whole into a pixel block (8x8: 4 to a block, the last block with 3).
  for (const ConvProblem& p : {ConvTester().input(7, 6, 8, 8).kernel(10, 3, 3).pad(1).get_problem(),
                               ConvTester().input(5, 9, 4, 4).kernel(14, 1, 1).get_problem()})
    ConvTester().problem(p).compare_threads({1, 2, 3}).implementation("bwd_weights_gemm")
        .check_backward_weights(Algorithm::Im2col);
  // Long reductions: the tolerance scales with N*P*Q (see ConvTester::check_backward_weights).
  ConvTester().input(4, 16, 40, 40).kernel(24, 3, 3).pad(1).compare_threads({1, 3}).check_backward_weights(
      Algorithm::Im2col);
  ConvTester().input(4, 16, 40, 40).kernel(16, 3, 3).pad(1).groups(16).check_backward_weights(Algorithm::Direct);
  // Depthwise past every vector width, channel multipliers, taps in blocks of 4 (S = 7), phases.
  for (int64_t w : {5, 16, 17, 40})
    ConvTester().input(2, 6, 9, w).kernel(12, 3, 7).stride(1, 2).pad(1, 3).dilation(2, 1).groups(6)
        .compare_threads({1, 2, 3}).implementation("bwd_weights_depthwise").check_backward_weights(Algorithm::Direct);
  // 3x3: all nine taps in one pass, x in place at column stride 1, from column phases past it.
  for (int64_t w : {5, 16, 17, 35})
    for (int64_t sw = 1; sw <= 3; ++sw)
      ConvTester().input(2, 6, 10, w).kernel(12, 3, 3).stride(3 - sw % 3, sw).pad(0, 2, 1, 1).dilation(1 + sw % 2, 2)
          .groups(6).compare_threads({1, 2, 3}).implementation("bwd_weights_depthwise")
          .check_backward_weights_if_applicable(Algorithm::Direct);
  ConvTester().input(1, 5, 23, 35).kernel(5, 5, 5).stride(3, 3).pad(2).groups(5).implementation("bwd_weights_depthwise")
      .check_backward_weights(Algorithm::Direct);
  ConvTester().input(4, 16, 40, 40).kernel(16, 3, 3).pad(1).groups(16).implementation("bwd_weights_depthwise")
      .check_backward_weights(Algorithm::Direct);
  ConvTester().input(4, 16, 40, 40).kernel(16, 3, 3).pad(1).groups(16).implementation("bwd_weights_dot")
      .check_backward_weights(Algorithm::Im2col);
  // Winograd and FFT have no backward-weights implementation: they decline, in words.
  CHECK_THROWS_WITH(ConvTester().input(1, 8, 8, 8).kernel(8, 3, 3).pad(1).check_backward_weights(Algorithm::Winograd),
                    Catch::Contains("not implemented"));
}

TEST_CASE("backward-weights: the foundation sweep", "[isa][backward]") {
  for (const ConvProblem& p : testing::foundation_sweep()) {
    ConvTester().problem(p).check_backward_weights(Algorithm::Direct);
    ConvTester().problem(p).implementation("bwd_weights_gemm").check_backward_weights(Algorithm::Im2col);
    ConvTester().problem(p).implementation("bwd_weights_dot").check_backward_weights_if_applicable(Algorithm::Im2col);
    ConvTester().problem(p).implementation("bwd_weights_sliced").check_backward_weights_if_applicable(Algorithm::Im2col);
    ConvTester().problem(p).implementation("bwd_weights_depthwise").check_backward_weights_if_applicable(Algorithm::Direct);
    ConvTester().problem(p).implementation("bwd_weights_outer").check_backward_weights_if_applicable(Algorithm::Direct);
  }
}

TEST_CASE("backward: the same bits for every workspace limit", "[isa][backward]") {
  for (const ConvProblem& p :
       {ConvTester().input(2, 19, 23, 29).kernel(21, 3, 3).pad(1).get_problem(),
        ConvTester().input(1, 12, 30, 31).kernel(20, 5, 3).stride(2, 1).pad(2, 1).dilation(1, 2).get_problem(),
        ConvTester().input(1, 70, 15, 14).kernel(50, 3, 3).stride(2).pad(1).get_problem()}) {
    INFO(to_string(p));
    const auto x = make_data(p.input_elements(), Data::Random, 1);
    const auto dy = make_data(p.output_elements(), Data::Random, 2);
    const auto w = make_data(p.weight_elements(), Data::Random, 3);
    // Each implementation pinned by name: the planner may pick another one under another budget.
    for (Algorithm a : {Algorithm::Im2col, Algorithm::Direct}) {
      std::vector<float> dx_ref;
      std::string name;
      for (std::size_t limit : {std::size_t(64) << 20, std::size_t(1) << 20, std::size_t(300000)})
        for (int threads : {1, 2, 3}) {
          INFO(to_string(a) << " limit " << limit << " threads " << threads << " " << name);
          ConvTester t = ConvTester().problem(p).bias(false).threads(threads).workspace_limit(limit).implementation(name);
          const PlanOptions o = t.options(a, Direction::BackwardData);
          if (!name.empty() && !testing::plan_error(p, o).empty()) continue;  // does not fit this budget
          const Plan data = Plan::create(p, o);
          CHECK(data.workspace_bytes() <= limit);
          if (name.empty()) name = data.implementation();
          const auto dx = t.run_backward_data(data, dy, w, {});
          if (dx_ref.empty()) dx_ref = dx;
          CHECK(dx == dx_ref);
        }
    }
    for (const char* impl : {"bwd_weights_gemm", "bwd_weights_sliced", "bwd_weights_dot", "bwd_weights_direct"}) {
      // The sliced GEMM needs 4 pixel blocks: only the first problem has them.
      if (std::string(impl) == "bwd_weights_sliced" && p.batch * ((p.out_height() * p.out_width() + 255) / 256) < 4)
        continue;
      std::vector<float> dw_ref;
      int compared = 0;
      for (std::size_t limit : {std::size_t(64) << 20, std::size_t(1) << 20, std::size_t(300000)})
        for (int threads : {1, 2, 3}) {
          INFO(impl << " limit " << limit << " threads " << threads);
          ConvTester t = ConvTester().problem(p).bias(false).threads(threads).workspace_limit(limit).implementation(impl);
          const PlanOptions o = t.options(Algorithm::Auto, Direction::BackwardWeights);
          if (!testing::plan_error(p, o).empty()) continue;  // does not fit this budget
          const Plan weights = Plan::create(p, o);
          CHECK(weights.workspace_bytes() <= limit);
          const auto dw = t.run_backward_weights(weights, x, dy);
          if (dw_ref.empty()) dw_ref = dw;
          CHECK(dw == dw_ref);
          ++compared;
        }
      CHECK(compared >= 6);
    }
  }
}

TEST_CASE("backward: resident memory during execute grows by no more than a 1 MiB budget", "[backward][memory]") {
  // 128 -> 128, 3x3 stride 2 on 56x56: one image's lowered matrix would be 128*9*784*4 = 3.6 MB,
  // a phase image of dx 128*28*28*4 = 0.4 MB.
  const ConvProblem p = ConvTester().input(1, 128, 56, 56).kernel(128, 3, 3).stride(2).pad(1).get_problem();
  const std::size_t budget = std::size_t(1) << 20;
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto dy = make_data(p.output_elements(), Data::Random, 2);
  const auto w = make_data(p.weight_elements(), Data::Random, 3);
  std::vector<float> dx(p.input_elements(), 0.0f), dw(p.weight_elements(), 0.0f), db(128, 0.0f);
  for (Direction d : {Direction::BackwardData, Direction::BackwardWeights}) {
    INFO(to_string(d));
    PlanOptions o;
    o.workspace_limit = budget;
    o.direction = d;
    // A twin plan runs first and stays alive: the code it runs is paged in and the thread pool is
    // up (neither is the algorithm's memory), and its workspace cannot be reused by the plan measured.
    const Plan twin = Plan::create(p, o), plan = Plan::create(p, o);
    REQUIRE(twin.implementation() == plan.implementation());
    PackedWeights packed, twin_packed;
    if (d == Direction::BackwardData) {
      packed = plan.pack_weights(w.data(), nullptr);
      twin_packed = twin.pack_weights(w.data(), nullptr);
    }
    auto run = [&](const Plan& q) {
      if (d == Direction::BackwardData)
        q.execute_backward_data(dy.data(), &q == &plan ? packed : twin_packed, dx.data());
      else
        q.execute_backward_weights(x.data(), dy.data(), dw.data(), db.data());
    };
    wake_thread_pool(0);
    run(twin);
    const long long before = peak_rss(true);
    REQUIRE(before > 0);
    run(plan);
    const long long growth = peak_rss(false) - before;
    INFO(plan.implementation() << ": peak RSS grew by " << growth << " bytes; workspace " << plan.workspace_bytes());
    CHECK(plan.workspace_bytes() <= budget);
    CHECK(growth <= (long long)budget + (256 << 10));
  }
}

TEST_CASE("backward: plans name their direction; the wrong call is an Error", "[backward]") {
  const ConvProblem p = ConvTester().input(1, 4, 9, 9).kernel(6, 3, 3).stride(2).pad(1).get_problem();
  std::vector<float> x(p.input_elements(), 1.0f), w(p.weight_elements(), 1.0f), y(p.output_elements(), 1.0f);
  std::vector<float> out(std::max(p.input_elements(), p.weight_elements()), -7.0f);
  PlanOptions o;
  o.direction = Direction::BackwardData;
  const Plan data = Plan::create(p, o);
  CHECK(data.direction() == Direction::BackwardData);
  CHECK_THAT(data.describe(), Catch::Contains("direction backward-data"));
  CHECK_THAT(data.implementation(), Catch::StartsWith("bwd_data_"));
  const PackedWeights packed = data.pack_weights(w.data(), nullptr);
  CHECK_THROWS_WITH(data.execute(x.data(), packed, out.data()),
                    Catch::Contains("direction=backward-data") && Catch::Contains("execute_backward_data"));
  CHECK_THROWS_WITH(data.execute_backward_weights(x.data(), y.data(), out.data(), nullptr),
                    Catch::Contains("execute_backward_data"));
  CHECK_THROWS_WITH(data.execute_backward_data(nullptr, packed, out.data()), Catch::Contains("grad_output=null"));
  CHECK_THROWS_WITH(data.execute_backward_data(y.data(), PackedWeights(), out.data()), Catch::Contains("empty"));
  o.direction = Direction::BackwardWeights;
  const Plan weights = Plan::create(p, o);
  CHECK_THROWS_WITH(weights.pack_weights(w.data(), nullptr), Catch::Contains("takes no weights"));
  CHECK_THROWS_WITH(weights.execute_backward_data(y.data(), packed, out.data()),
                    Catch::Contains("execute_backward_weights"));
  CHECK_THROWS_WITH(weights.execute_backward_weights(x.data(), nullptr, out.data(), nullptr),
                    Catch::Contains("grad_output=null"));
  const Plan forward = Plan::create(p);
  CHECK_THROWS_WITH(forward.execute_backward_data(y.data(), packed, out.data()), Catch::Contains("direction=forward"));
  // Packed weights of one direction's plan do not run another plan.
  o.direction = Direction::BackwardData;
  const Plan other = Plan::create(p, o);
  CHECK_THROWS_WITH(other.execute_backward_data(y.data(), forward.pack_weights(w.data(), nullptr), out.data()),
                    Catch::Contains("another plan"));
  // Nothing was written on error.
  for (float v : out) REQUIRE(v == -7.0f);
  // Invalid enum values.
  o.direction = static_cast<Direction>(7);
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("direction=7"));
}

TEST_CASE("backward: find_algorithms ranks per direction, each declining in words", "[backward]") {
  const ConvProblem p = ConvTester().input(1, 16, 14, 14).kernel(16, 3, 3).stride(2).pad(1).get_problem();
  PlanOptions o;
  o.direction = Direction::BackwardData;
  bool winograd_declined = false;
  for (const Candidate& c : find_algorithms(p, o)) {
    if (c.applicable) CHECK_THAT(c.implementation, Catch::StartsWith("bwd_data_"));
    if (c.algorithm == Algorithm::Winograd && !c.applicable) winograd_declined = !c.reason.empty();
  }
  CHECK(winograd_declined);  // stride 2: the phases' sub-kernels are 2x2, 2x1, 1x2, 1x1
  o.direction = Direction::BackwardWeights;
  int applicable = 0;
  for (const Candidate& c : find_algorithms(p, o))
    if (c.applicable) {
      ++applicable;
      CHECK_THAT(c.implementation, Catch::StartsWith("bwd_weights_"));
    }
  CHECK(applicable >= 2);
  // Measure mode times the backward candidates and keeps wisdom per direction.
  o.mode = PlanMode::Measure;
  const Plan measured = Plan::create(p, o);
  CHECK(measured.direction() == Direction::BackwardWeights);
  CHECK_THAT(measured.describe(), Catch::Contains("measured"));
}
