// Every algorithm against the reference over the foundation sweep, on each instruction set the
// tests are run with (see tests/CMakeLists.txt: the [isa] tests run once per FASTCONV_MAX_ISA).
#include <catch2/catch.hpp>

#include "conv_tester.hpp"

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
