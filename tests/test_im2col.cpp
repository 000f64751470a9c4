// Im2col's memory contract: every budget gives the same bits, the workspace stays within the budget,
// and so does the process's resident memory while it runs.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <thread>

#include "conv_tester.hpp"
#include "core/cpu.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;
using fastconv::testing::Data;
using fastconv::testing::make_data;
using fastconv::testing::named_minimum;
using fastconv::testing::peak_rss;
using fastconv::testing::plan_error;
using fastconv::testing::run_plan;
using fastconv::testing::wake_thread_pool;

namespace {

std::vector<float> run_with(const ConvProblem& p, std::size_t limit, int threads, const std::vector<float>& x,
                            const std::vector<float>& w, const std::vector<float>& b) {
  PlanOptions o;
  o.algorithm = Algorithm::Im2col;
  // im2col's own blocking (the other im2col solvers sum in other orders).
  o.implementation = p.kernel_height * p.kernel_width == 1 && p.stride_h * p.stride_w == 1 ? "im2col_1x1_gemm" : "im2col_gemm";
  o.workspace_limit = limit;
  o.threads = threads;
  return run_plan(p, o, x, w, b);
}

// One implementation (by name prefix) gives the same bits under every budget down to the minimum it
// names and on 1-3 threads, and refuses below that minimum, naming it.
void check_same_bits_for_budgets(const ConvProblem& p, const std::string& implementation, std::size_t mid_budget) {
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
  PlanOptions o;
  o.implementation = implementation;
  const auto ref = run_plan(p, o, x, w, b);
  o.threads = 3;
  o.workspace_limit = 0;
  const std::size_t minimum = named_minimum(plan_error(p, o), implementation + ": needs at least ");
  for (std::size_t limit : {std::size_t(1) << 30, mid_budget, minimum})
    for (int threads : {1, 2, 3}) {
      INFO("limit " << limit << " threads " << threads);
      o.workspace_limit = limit;
      o.threads = threads;
      CHECK(run_plan(p, o, x, w, b) == ref);
    }
  o.workspace_limit = minimum - 1;
  CHECK_THAT(plan_error(p, o), Catch::Contains(implementation) && Catch::Contains("needs at least"));
}

// One implementation (by name prefix) against the reference on every case of the foundation sweep
// where it applies (every 4th, from `threads_phase`, also on 1-3 threads bitwise); how many applied.
int sweep_where_applicable(const std::string& implementation, uint32_t seed_base, int threads_phase) {
  int applied = 0, index = 0;
  for (const ConvProblem& p : testing::foundation_sweep()) {
    INFO("sweep case " << index << ": " << to_string(p));
    ConvTester t;
    t.problem(p).bias(index % 3 != 2).seed(seed_base + uint32_t(index)).implementation(implementation);
    if (index % 4 == threads_phase) t.compare_threads({1, 2, 3});
    applied += !t.check_if_applicable(Algorithm::Im2col).empty();
    ++index;
  }
  return applied;
}

// One implementation (by name prefix) on p against the reference: on 1-3 threads bitwise, then with
// ReLU and a residual that is the output, and with GELU, a residual and no bias. Its full name.
std::string check_with_post_ops(const ConvProblem& p, const std::string& implementation) {
  const std::string impl =
      ConvTester().problem(p).implementation(implementation).compare_threads({1, 2, 3}).check(Algorithm::Im2col);
  ConvTester().problem(p).implementation(implementation).activation(Activation::Relu).residual(0.5f, true).check(
      Algorithm::Im2col);
  ConvTester().problem(p).implementation(implementation).bias(false).activation(Activation::Gelu).residual(1.0f).check(
      Algorithm::Im2col);
  return impl;
}

}  // namespace

TEST_CASE("im2col: the same bits for every budget and thread count", "[isa][im2col]") {
  for (const ConvProblem& p :
       {ConvTester().input(2, 19, 23, 29).kernel(21, 3, 3).pad(1).get_problem(),
        ConvTester().input(1, 300, 9, 11).kernel(13, 1, 1).get_problem(),  // pointwise, K past KC
        ConvTester().input(1, 8, 30, 31).kernel(7, 5, 3).stride(2, 1).pad(2, 1).dilation(1, 2).groups(1).get_problem()}) {
    INFO(to_string(p));
    const auto x = make_data(p.input_elements(), Data::Random, 1);
    const auto w = make_data(p.weight_elements(), Data::Random, 2);
    const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
    const auto ref = run_with(p, PlanOptions::kDefaultWorkspaceLimit, 1, x, w, b);
    for (std::size_t limit : {std::size_t(1) << 30, std::size_t(1) << 20, std::size_t(100000), std::size_t(40000)})
      for (int threads : {1, 2, 3}) {
        INFO("limit " << limit << " threads " << threads);
        std::vector<float> y;
        try {
          y = run_with(p, limit, threads, x, w, b);
        } catch (const Error& e) {  // only a budget below the minimum may refuse
          CHECK_THAT(e.what(), Catch::Contains("needs at least"));
          CHECK(limit < 100000);
          continue;
        }
        CHECK(y == ref);
      }
  }
}

// Stride 1 with an output as wide as the input packs each lowered row as one copy of the plane,
// then zeroes what wrapped into the neighbouring row: kernels one column wide, 'same' widths,
// asymmetric and dilated, a kernel reach as wide as the image, blocks starting mid-row (the
// smallest budget), groups and a batch.
TEST_CASE("im2col: stride-1 layers as wide as their input", "[isa][im2col]") {
  for (const ConvProblem& p :
       {ConvTester().input(1, 12, 17, 17).kernel(10, 7, 1).pad(3, 0).get_problem(),
        ConvTester().input(1, 12, 17, 17).kernel(10, 1, 7).pad(0, 3).get_problem(),
        ConvTester().input(2, 6, 13, 9).kernel(8, 5, 1).get_problem(),
        ConvTester().input(1, 5, 11, 10).kernel(7, 3, 3).pad(1, 0, 2, 0).get_problem(),
        ConvTester().input(1, 4, 9, 4).kernel(6, 3, 3).pad(3).dilation(3).get_problem(),
        ConvTester().input(1, 3, 6, 2).kernel(5, 3, 3).pad(1, 1, 2, 2).dilation(1, 2).get_problem(),
        ConvTester().input(2, 8, 10, 21).kernel(6, 3, 5).pad(1, 2).groups(2).get_problem()}) {
    INFO(to_string(p));
    REQUIRE(p.out_width() == p.in_width);
    PlanOptions o;
    o.algorithm = Algorithm::Im2col;
    o.implementation = "im2col_gemm";  // the flat packing is its; im2col_regions gathers its own way
    o.workspace_limit = 0;
    o.threads = 3;  // the most threads run below: each needs its own block
    const std::size_t minimum = named_minimum(plan_error(p, o));
    for (std::size_t limit : {PlanOptions::kDefaultWorkspaceLimit, minimum})
      ConvTester().problem(p).implementation("im2col_gemm").workspace_limit(limit).threads(2).compare_threads({1, 3}).check(
          Algorithm::Im2col);
  }
}

TEST_CASE("im2col: a budget below the minimum is refused with the minimum", "[im2col][validation]") {
  const ConvProblem p = ConvTester().input(1, 64, 20, 20).kernel(64, 3, 3).pad(1).get_problem();
  PlanOptions o;
  o.algorithm = Algorithm::Im2col;
  o.implementation = "im2col_gemm";
  o.threads = 2;
  o.workspace_limit = 1000;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("im2col") && Catch::Contains("needs at least") &&
                                           Catch::Contains("workspace_limit=1000"));
  // The minimum it names is enough.
  const std::size_t minimum = named_minimum(plan_error(p, o));
  o.workspace_limit = minimum;
  const Plan plan = Plan::create(p, o);
  CHECK(plan.workspace_bytes() == minimum);
  ConvTester().problem(p).implementation("im2col_gemm").threads(2).workspace_limit(minimum).check(Algorithm::Im2col);
  // Auto under a budget nothing but a zero-workspace algorithm fits still plans.
  PlanOptions tiny;
  tiny.workspace_limit = 0;
  CHECK(Plan::create(p, tiny).workspace_bytes() == 0);
}

TEST_CASE("im2col: resident memory during execute grows by no more than the budget", "[im2col][memory]") {
  // 256 -> 256, 3x3 on 56x56: the lowered matrix of one image would be 256*9*3136*4 = 28.9 MB.
  const ConvProblem p = ConvTester().input(1, 256, 56, 56).kernel(256, 3, 3).pad(1).get_problem();
  const std::size_t budget = std::size_t(1) << 20;
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  std::vector<float> y(p.output_elements(), 0.0f);  // touched: its pages are resident
  PlanOptions o;
  o.algorithm = Algorithm::Im2col;
  o.workspace_limit = budget;
  // A twin plan runs first and stays alive: the code it runs is paged in and the thread pool is up
  // (neither is the algorithm's memory), and its workspace cannot be reused by the plan measured.
  const Plan twin = Plan::create(p, o), plan = Plan::create(p, o);
  const PackedWeights packed = plan.pack_weights(w.data(), nullptr), twin_packed = twin.pack_weights(w.data(), nullptr);
  wake_thread_pool(0);
  twin.execute(x.data(), twin_packed, y.data());
  const long long before = peak_rss(true);
  REQUIRE(before > 0);
  plan.execute(x.data(), packed, y.data());
  const long long growth = peak_rss(false) - before;
  INFO("peak RSS grew by " << growth << " bytes; workspace " << plan.workspace_bytes() << ", budget " << budget);
  CHECK(plan.workspace_bytes() <= budget);
  CHECK(growth <= (long long)budget + (256 << 10));  // the budget, plus allocator slack
}

// im2col_regions: the GEMM over regions of equal taps, without the taps that read padding.
TEST_CASE("im2col_regions matches the reference over the sweep", "[isa][im2col][sweep]") {
  const int applied = sweep_where_applicable("im2col_regions", 2000, 0);
  INFO("applied to " << applied << " of " << testing::foundation_sweep().size());
  CHECK(applied >= 10);
}

TEST_CASE("im2col_regions: wide padding, bands that read nothing, strides, groups, post-ops", "[isa][im2col]") {
  const std::vector<ConvProblem> problems = {
      // ASPP-like: 3x3 dilated as far as the padding, 9 regions; and past the image (a band of
      // outputs whose taps all read padding: the bias alone).
      ConvTester().input(1, 24, 17, 19).kernel(20, 3, 3).pad(6).dilation(6).get_problem(),
      ConvTester().input(2, 5, 9, 11).kernel(7, 3, 3).pad(12).dilation(12).get_problem(),
      ConvTester().input(1, 6, 3, 20).kernel(9, 1, 3).pad(4, 4, 1, 1).get_problem(),
      // Strided, asymmetric, non-square kernels; runs cut by the NR panels.
      ConvTester().input(1, 7, 40, 37).kernel(13, 5, 7).stride(2, 3).pad(4, 1, 6, 2).dilation(2, 1).get_problem(),
      ConvTester().input(3, 8, 10, 41).kernel(6, 3, 5).stride(1, 2).pad(3, 3, 5, 5).dilation(3, 2).groups(2).get_problem(),
      // A kernel larger than the image; depth past KC inside one tap (300 channels).
      ConvTester().input(1, 300, 6, 6).kernel(17, 7, 7).pad(3).get_problem(),
      ConvTester().input(1, 4, 5, 5).kernel(5, 9, 9).pad(4).get_problem()};
  for (const ConvProblem& p : problems) {
    INFO(to_string(p));
    CHECK(check_with_post_ops(p, "im2col_regions").rfind("im2col_regions_gemm_", 0) == 0);
  }
}

TEST_CASE("im2col_regions: the same bits for every budget and thread count", "[isa][im2col]") {
  check_same_bits_for_budgets(ConvTester().input(1, 40, 21, 23).kernel(30, 3, 3).pad(5).dilation(5).get_problem(),
                              "im2col_regions", 200000);
}

TEST_CASE("im2col_regions: declines where little of the work reads padding", "[im2col]") {
  PlanOptions o;
  o.implementation = "im2col_regions";
  // 3x3 'same' on 56x56: 3.5% of the taps read padding.
  CHECK_THAT(plan_error(ConvTester().input(1, 64, 56, 56).kernel(64, 3, 3).pad(1).get_problem(), o),
             Catch::Contains("fewer than 10% of the taps read padding"));
  CHECK_THAT(plan_error(ConvTester().input(1, 64, 56, 56).kernel(64, 1, 1).get_problem(), o),
             Catch::Contains("fewer than 10% of the taps read padding"));
}

// im2col_pixels: the output pixels along the microkernel's rows, the channels along its vectors.
TEST_CASE("im2col_pixels matches the reference over the sweep", "[isa][im2col][sweep]") {
  const int applied = sweep_where_applicable("im2col_pixels", 3000, 1);
  INFO("applied to " << applied << " of " << testing::foundation_sweep().size());
  // AVX-512 only; there it declines fewer than 8 channels per group and outputs over 256 pixels.
  if (detail::best_isa() >= detail::Isa::Avx512) CHECK(applied >= 20);
}

TEST_CASE("im2col_pixels: pixel and channel tails, depth past KC, strides, groups, post-ops", "[isa][im2col]") {
  // Proposed for outputs of at most 256 pixels, with AVX-512.
  const std::vector<ConvProblem> problems = {
      // 7x7 1x1: 49 pixels in 7 tiles; 100 channels end in a half-width panel (AVX-512: 48 + 48 + 4),
      // 600 input channels run past KC (512 with AVX-512) into a partial depth block.
      ConvTester().input(1, 600, 7, 7).kernel(100, 1, 1).get_problem(),
      // Pixel tails (15x15 = 32 tiles + 1), 1x7 and 7x1 with their 'same' padding.
      ConvTester().input(1, 24, 15, 15).kernel(40, 1, 7).pad(0, 3).get_problem(),
      ConvTester().input(2, 24, 15, 15).kernel(40, 7, 1).pad(3, 0).get_problem(),
      // Strided 3x3 and 1x1 (gathered), a dilated 3x3, groups, and channels past kMaxChannels.
      ConvTester().input(1, 33, 15, 15).kernel(70, 3, 3).stride(2).pad(1).get_problem(),
      ConvTester().input(1, 64, 14, 14).kernel(17, 1, 1).stride(2).get_problem(),
      ConvTester().input(1, 16, 13, 11).kernel(24, 3, 3).pad(2).dilation(2).groups(2).get_problem(),
      ConvTester().input(1, 20, 5, 5).kernel(600, 3, 3).pad(1).get_problem(),
      // The largest image it takes (16x16), a batch.
      ConvTester().input(2, 5, 16, 16).kernel(9, 3, 3).pad(1).get_problem()};
  if (detail::best_isa() < detail::Isa::Avx512) {  // proposed with AVX-512 only, and says so
    PlanOptions o;
    o.implementation = "im2col_pixels";
    CHECK_THAT(plan_error(problems[0], o), Catch::Contains("im2col_pixels: AVX-512 only"));
    return;
  }
  for (const ConvProblem& p : problems) {
    INFO(to_string(p));
    CHECK(check_with_post_ops(p, "im2col_pixels").rfind("im2col_pixels_gemm_", 0) == 0);
  }
}

TEST_CASE("im2col_pixels: the same bits for every budget and thread count", "[isa][im2col]") {
  if (detail::best_isa() < detail::Isa::Avx512) return;  // proposed with AVX-512 only
  check_same_bits_for_budgets(ConvTester().input(1, 150, 14, 14).kernel(130, 3, 3).pad(1).get_problem(),
                              "im2col_pixels", 300000);
}

// im2col_implicit: the pixel-major tiles reading the (zero-padded) input in place.
TEST_CASE("im2col_implicit matches the reference over the sweep", "[isa][im2col][sweep]") {
  const int applied = sweep_where_applicable("im2col_implicit", 3000, 1);
  INFO("applied to " << applied << " of " << testing::foundation_sweep().size());
  // AVX2 and AVX-512; there it declines 1x1 kernels, fewer than 8 channels per group, outputs over
  // 320 pixels and images its tiles pad more than im2col's panels.
  if (detail::best_isa() >= detail::Isa::Avx2) CHECK(applied >= 20);
}

TEST_CASE("im2col_implicit: pixel and channel tails, strides, dilations, groups, padding, post-ops", "[isa][im2col]") {
  const std::vector<ConvProblem> problems = {
      // 17x17 1x7 and 7x1 with 'same' padding (the padded copy): 289 pixels in 41 tiles + 2; 100
      // channels end in a one-vector tile (AVX-512: 48 + 48 + 4), 40 in a one- or two-vector tile.
      ConvTester().input(1, 24, 17, 17).kernel(100, 1, 7).pad(0, 3).get_problem(),
      ConvTester().input(2, 24, 17, 17).kernel(40, 7, 1).pad(3, 0).get_problem(),
      // No padding: the input read where it lies; a stride and 'valid' 3x3, depth past KC (300 x 9).
      ConvTester().input(1, 300, 15, 13).kernel(70, 3, 3).stride(2).get_problem(),
      // Asymmetric padding, dilation, groups, a patchify (kernel = stride), a 7x7 image, a batch.
      ConvTester().input(1, 16, 13, 11).kernel(24, 3, 3).pad(2, 1, 0, 3).dilation(2).groups(2).get_problem(),
      ConvTester().input(1, 3, 28, 28).kernel(33, 4, 4).stride(4).get_problem(),
      ConvTester().input(3, 20, 7, 7).kernel(600, 3, 3).pad(1).get_problem()};
  if (detail::best_isa() < detail::Isa::Avx2) {  // proposed with AVX2 and AVX-512, and says so
    PlanOptions o;
    o.implementation = "im2col_implicit";
    CHECK_THAT(plan_error(problems[0], o), Catch::Contains("im2col_implicit: AVX2 or AVX-512"));
    return;
  }
  for (const ConvProblem& p : problems) {
    INFO(to_string(p));
    CHECK(check_with_post_ops(p, "im2col_implicit").rfind("im2col_implicit_gemm_", 0) == 0);
    if (p.pad_top || p.pad_left)  // the planner's padded copy in another mode, under the solver's own
      for (PadMode mode : {PadMode::Reflect, PadMode::Circular})
        ConvTester().problem(p).padding_mode(mode).implementation("im2col_implicit").check(Algorithm::Im2col);
  }
}

TEST_CASE("im2col_implicit: declines 1x1 kernels and large images", "[im2col]") {
  PlanOptions o;
  o.implementation = "im2col_implicit";
  if (detail::best_isa() < detail::Isa::Avx2) return;
  CHECK_THAT(plan_error(ConvTester().input(1, 64, 14, 14).kernel(64, 1, 1).get_problem(), o),
             Catch::Contains("1x1 kernel"));
  CHECK_THAT(plan_error(ConvTester().input(1, 64, 28, 28).kernel(64, 3, 3).pad(1).get_problem(), o),
             Catch::Contains("more than 320 pixels"));
  CHECK_THAT(plan_error(ConvTester().input(1, 64, 60, 60).kernel(64, 3, 3).stride(2).pad(1).get_problem(), o),
             Catch::Contains("more than 784 pixels, strided"));
  CHECK(plan_error(ConvTester().input(1, 64, 42, 42).kernel(64, 3, 3).stride(2).pad(1).get_problem(), o).empty());
}

TEST_CASE("im2col_implicit: the same bits for every budget and thread count", "[isa][im2col]") {
  if (detail::best_isa() < detail::Isa::Avx2) return;  // proposed with AVX2 and AVX-512
  check_same_bits_for_budgets(ConvTester().input(1, 150, 14, 14).kernel(130, 3, 3).pad(1).get_problem(),
                              "im2col_implicit", 600000);
}
