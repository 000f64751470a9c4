// Every algorithm against the reference over the foundation sweep, on each instruction set the
// tests are run with (see tests/CMakeLists.txt: the [isa] tests run once per FASTCONV_MAX_ISA).
#include <catch2/catch.hpp>

#include <cmath>

#include "conv_tester.hpp"
#include "direct/reference.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;

namespace {

// Runs the sweep for one algorithm; returns how many problems it applied to.
int sweep(Algorithm a) {
  int applied = 0, index = 0;
  for (const ConvProblem& p : testing::foundation_sweep()) {
    INFO("sweep case " << index << ": " << to_string(p));
    const bool with_bias = index % 3 != 2;  // a third of the cases without bias
    ConvTester t;
    t.problem(p).bias(with_bias).seed(uint32_t(1000 + index));
    if (index % 5 == 0) t.compare_threads({1, 2, 3});
    applied += !t.check_if_applicable(a).empty();
    ++index;
  }
  return applied;
}

}  // namespace

TEST_CASE("direct matches the reference over the sweep", "[isa][direct][sweep]") {
  // Direct applies to everything.
  CHECK(sweep(Algorithm::Direct) == int(testing::foundation_sweep().size()));
}

TEST_CASE("auto matches the reference over the sweep", "[isa][auto][sweep]") {
  int index = 0;
  for (const ConvProblem& p : testing::foundation_sweep()) {
    INFO("sweep case " << index << ": " << to_string(p));
    const Plan plan = Plan::create(p);
    ConvTester().problem(p).seed(uint32_t(index++)).check(plan.algorithm());
  }
}

TEST_CASE("im2col matches the reference over the sweep", "[isa][im2col][sweep]") {
  CHECK(sweep(Algorithm::Im2col) == int(testing::foundation_sweep().size()));
}

TEST_CASE("direct and im2col: a NaN or Inf reaches exactly the outputs whose receptive field holds it",
          "[isa][nonfinite]") {
  for (const ConvProblem& p : {ConvTester().input(1, 3, 13, 17).kernel(5, 3, 3).pad(1).get_problem(),
                               ConvTester().input(2, 4, 12, 11).kernel(6, 5, 3).stride(2, 1).pad(2, 1).dilation(1, 2).get_problem(),
                               ConvTester().input(1, 8, 9, 9).kernel(8, 1, 1).get_problem()}) {
    for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      auto x = testing::make_data(p.input_elements(), testing::Data::Random, 1);
      const auto w = testing::make_data(p.weight_elements(), testing::Data::Random, 2);
      x[x.size() / 2 + 3] = bad;
      x[5] = bad;
      std::vector<double> ref(p.output_elements());
      detail::reference_conv2d(p, x.data(), w.data(), nullptr, ref.data());
      for (Algorithm a : {Algorithm::Direct, Algorithm::Im2col}) {
        PlanOptions o;
        o.algorithm = a;
        const Plan plan = Plan::create(p, o);
        std::vector<float> y(p.output_elements());
        plan.execute(x.data(), w.data(), nullptr, y.data());
        INFO(to_string(p) << " " << plan.implementation() << " with " << bad);
        int nonfinite = 0;
        for (std::size_t i = 0; i < y.size(); ++i) {
          INFO("output " << i << ": " << y[i] << " vs reference " << ref[i]);
          REQUIRE(std::isfinite(y[i]) == std::isfinite(ref[i]));
          REQUIRE(std::isnan(y[i]) == std::isnan(ref[i]));
          nonfinite += !std::isfinite(y[i]);
        }
        CHECK(nonfinite > 0);
      }
    }
  }
}
