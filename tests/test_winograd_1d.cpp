// The one-dimensional Winograd F(6,3), F(4,5), F(2,7) for R x 1 and 1 x R kernels, against the
// double-precision reference on every instruction set the host runs: kernel heights and widths,
// images whose rows of tiles end past every vector width and panel, padding on the long side,
// groups, batches, post-ops, thread counts, budgets, declines, non-finite inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "conv_tester.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;
using fastconv::testing::Data;
using fastconv::testing::make_data;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The tester for an R x 1 (vertical) or 1 x R problem with the other sizes given.
ConvTester oriented(bool vertical, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t pad_lo,
                    int64_t pad_hi) {
  ConvTester t;
  if (vertical)
    t.input(n, c, h, w).kernel(k, r, 1).pad(pad_lo, pad_hi, 0, 0);
  else
    t.input(n, c, w, h).kernel(k, 1, r).pad(0, 0, pad_lo, pad_hi);
  return t;
}

}  // namespace

TEST_CASE("winograd 1d: R x 1 and 1 x R against the reference (kernels, tile edges, padding, groups)", "[isa][winograd][winograd_1d]") {
  // Long sides past every m (2, 4, 6) and tile count past every vector width (4, 8, 16) and NR
  // panel; short sides of 1 to 19 (runs of tiles that end mid-vector); padding none, 'same' and
  // lopsided; channels past the GEMM tiles.
  int index = 0;
  for (bool vertical : {true, false})
    for (int64_t r : {3, 5, 7})
      for (const auto& [h, w] : {std::pair<int64_t, int64_t>{17, 17}, {9, 1}, {23, 5}, {8, 19}, {r, 33}, {30, 3}}) {
        const int64_t pads[3][2] = {{0, 0}, {r / 2, r / 2}, {r - 1, 1}};
        const auto& pad = pads[index % 3];
        if (h + pad[0] + pad[1] < r) continue;
        const int64_t c = 4 + (index * 7) % 29, k = 4 + (index * 5) % 27;
        ConvTester t = oriented(vertical, 1 + index % 2, c, h, w, k, r, pad[0], pad[1]);
        t.implementation("winograd_1d").bias(index % 3 != 1).seed(uint32_t(900 + index));
        if (index % 4 == 0) t.compare_threads({1, 2, 3});
        INFO(to_string(t.get_problem()));
        const std::string impl = t.check(Algorithm::Winograd);
        const std::string m = r == 3 ? "6" : r == 5 ? "4" : "2";
        const std::string shape = vertical ? std::to_string(r) + "x1" : "1x" + std::to_string(r);
        CHECK(starts_with(impl, "winograd_1d_f" + m + "_" + shape + "_"));
        ++index;
      }
  CHECK(index >= 30);
  // Groups, and a batch of many small images.
  for (bool vertical : {true, false}) {
    oriented(vertical, 2, 24, 11, 9, 36, 7, 3, 3).groups(3).implementation("winograd_1d").check(Algorithm::Winograd);
    oriented(vertical, 5, 16, 6, 4, 20, 3, 1, 1).implementation("winograd_1d").compare_threads({1, 3}).check(Algorithm::Winograd);
  }
}

TEST_CASE("winograd 1d: Inception's 1x7 and 7x1 layers, and the accuracy of F(2,7)", "[winograd][winograd_1d][accuracy]") {
  for (bool vertical : {true, false}) {
    ConvTester t = oriented(vertical, 1, 192, 17, 17, 192, 7, 3, 3);
    INFO(to_string(t.get_problem()));
    CHECK(starts_with(t.implementation("winograd_1d").compare_threads({1, 3}).check(Algorithm::Winograd), "winograd_1d_f2_"));
  }
  oriented(true, 1, 160, 12, 12, 96, 5, 2, 2).implementation("winograd_1d_f4").check(Algorithm::Winograd);
  oriented(false, 1, 384, 8, 8, 384, 3, 1, 1).implementation("winograd_1d_f6").check(Algorithm::Winograd);
}

TEST_CASE("winograd 1d: post-ops, the residual the output itself", "[isa][winograd][winograd_1d][post_ops]") {
  for (bool vertical : {true, false}) {
    oriented(vertical, 2, 12, 13, 10, 20, 7, 3, 3).implementation("winograd_1d").activation(Activation::Relu6)
        .residual(0.5f, true).check(Algorithm::Winograd);
    oriented(vertical, 1, 9, 20, 6, 17, 3, 1, 1).implementation("winograd_1d").activation(Activation::LeakyRelu, 0.25f)
        .residual(1.0f, false).compare_threads({2, 3}).check(Algorithm::Winograd);
  }
}

TEST_CASE("winograd 1d: every budget gives the same bits, and it declines what it cannot do, in words", "[isa][winograd][winograd_1d][workspace]") {
  // Smaller budgets: fewer tiles per group, fewer output channels per block; the sums are the same.
  for (bool vertical : {true, false}) {
    const ConvProblem p = oriented(vertical, 1, 64, 40, 24, 48, 7, 3, 3).get_problem();
    const auto x = make_data(p.input_elements(), Data::Random, 3), w = make_data(p.weight_elements(), Data::Random, 4);
    std::vector<float> first;
    for (std::size_t limit : {std::size_t(64) << 20, std::size_t(2) << 20, std::size_t(1) << 20}) {
      PlanOptions o;
      o.implementation = "winograd_1d", o.workspace_limit = limit, o.threads = 2;
      const Plan plan = Plan::create(p, o);
      INFO(to_string(p) << " limit " << limit << ": " << plan.describe());
      CHECK(plan.workspace_bytes() <= limit);
      std::vector<float> y(p.output_elements());
      plan.execute(x.data(), w.data(), nullptr, y.data());
      if (first.empty())
        first = y;
      else
        CHECK(y == first);
    }
    oriented(vertical, 1, 64, 40, 24, 48, 7, 3, 3).implementation("winograd_1d").workspace_limit(std::size_t(1) << 20)
        .check(Algorithm::Winograd);
  }
  auto reason = [](const ConvTester& t, std::size_t limit = PlanOptions::kDefaultWorkspaceLimit) {
    PlanOptions o;
    o.implementation = "winograd_1d", o.workspace_limit = limit;
    try {
      Plan::create(t.get_problem(), o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("planned");
  };
  CHECK_THAT(reason(ConvTester().input(1, 8, 9, 9).kernel(8, 3, 3).pad(1)), Catch::Contains("needs 3x1"));
  CHECK_THAT(reason(ConvTester().input(1, 8, 9, 9).kernel(8, 7, 1).stride(2)), Catch::Contains("stride and dilation"));
  CHECK_THAT(reason(ConvTester().input(1, 8, 9, 9).kernel(8, 1, 7).pad(1, 1, 3, 3)), Catch::Contains("1-wide side"));
  CHECK_THAT(reason(ConvTester().input(1, 8, 9, 9).kernel(8, 7, 1).groups(8)), Catch::Contains("fewer than 4 channels"));
  CHECK_THAT(reason(ConvTester().input(1, 64, 40, 24).kernel(48, 7, 1).pad(3, 3, 0, 0), 4096),
             Catch::Contains("workspace"));
}

TEST_CASE("winograd 1d: where a NaN in the input reaches the output", "[isa][winograd][winograd_1d][nonfinite]") {
  // One NaN at input row 5 of column 2 (12 rows): with a 7x1 kernel and pad 3 the reference makes
  // output rows 2..8 of column 2 NaN, and so does F(2,7): an input row at position 1..6 of a tile
  // reaches both its outputs, position 0 only the first and 7 only the second, which is exactly the
  // receptive field. With 3x1 and pad 1 (reference: rows 4..6), F(6,3) spreads it through the tile
  // holding it at position 6 (tile 0: rows 0..5) and to the first row of the next (row 6). No other
  // column either way; transposed, the same along a row.
  for (const auto& [r, pad, lo] : {std::tuple<int64_t, int64_t, int>{7, 3, 2}, {3, 1, 0}})
  for (bool vertical : {true, false}) {
    const ConvProblem p = oriented(vertical, 1, 4, 12, 5, 6, r, pad, pad).get_problem();
    auto x = make_data(p.input_elements(), Data::Random, 1);
    const auto w = make_data(p.weight_elements(), Data::Random, 2);
    x[std::size_t(1 * 60 + (vertical ? 5 * 5 + 2 : 2 * 12 + 5))] = std::nanf("");
    PlanOptions o;
    o.implementation = "winograd_1d";
    std::vector<float> y(p.output_elements());
    Plan::create(p, o).execute(x.data(), w.data(), nullptr, y.data());
    for (int k = 0; k < 6; ++k)
      for (int row = 0; row < 12; ++row)
        for (int col = 0; col < 5; ++col) {
          const bool expect_nan = col == 2 && row >= lo && row <= (r == 7 ? 8 : 6);
          const std::size_t at = std::size_t(k * 60 + (vertical ? row * 5 + col : col * 12 + row));
          INFO(r << (vertical ? " rows" : " columns") << ", output channel " << k << " row " << row << " col " << col);
          CHECK(std::isnan(y[at]) == expect_nan);
        }
  }
}
