// The SGEMM microkernels (every tile remainder, every instruction set the host runs) and the
// threaded SGEMM against a naive GEMM.
#include <catch2/catch.hpp>

#include <random>

#include "gemm_tester.hpp"

using namespace fastconv;
using fastconv::testing::GemmTester;

TEST_CASE("the host's best instruction set is among the kernels tested", "[isa][gemm]") {
  const auto kernels = testing::runnable_kernels();
  bool best = false;
  for (const auto& k : kernels) best |= k.isa == detail::best_isa();
  CHECK(best);
  INFO("best: " << detail::isa_name(detail::best_isa()));
  CHECK(detail::sgemm_kernel(detail::best_isa()).isa == detail::best_isa());
}

TEST_CASE("microkernel: every m <= MR, n <= 2*NR, k around the unroll", "[isa][gemm][ukernel]") {
  for (const auto& kernel : testing::runnable_kernels()) {
    const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
    for (int64_t m = 1; m <= mr; ++m)
      for (int64_t n = 1; n <= 2 * nr; ++n)
        for (int64_t k : {1, 2, 3, 4, 5, 8, 11, 17}) {
          const bool acc = (m + n + k) % 2 == 0, bias = (m + k) % 3 == 0;
          GemmTester(kernel).m(m).n(n).k(k).accumulate(acc).bias(bias).check_macro_kernel();
        }
  }
}

TEST_CASE("microkernel: strided output, accumulate, bias, exact on small integers", "[isa][gemm][ukernel]") {
  for (const auto& kernel : testing::runnable_kernels()) {
    const int mr = kernel.blocking.mr, nr = kernel.blocking.nr;
    for (bool acc : {false, true})
      for (bool bias : {false, true})
        for (int64_t m : {int64_t(mr), int64_t(mr - 1), int64_t(2 * mr + 1)})
          for (int64_t n : {int64_t(nr), int64_t(nr + 3), int64_t(3 * nr)}) {
            GemmTester(kernel).m(m).n(n).k(37).ldc(n + 5).accumulate(acc).bias(bias).check_macro_kernel();
            GemmTester(kernel).m(m).n(n).k(300).accumulate(acc).bias(bias).small_integers(true).check_macro_kernel();
          }
  }
}

TEST_CASE("sgemm matches a naive GEMM; threads do not change the bits", "[isa][gemm][sgemm]") {
  std::mt19937 rng(7);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (const auto& kernel : testing::runnable_kernels()) {
    // Past MC, KC and NC of every table entry.
    GemmTester(kernel).m(203).n(1100).k(530).threads(2).bias(true).check_sgemm();
    GemmTester(kernel).m(1).n(1).k(1).check_sgemm();
    GemmTester(kernel).m(400).n(5).k(3).threads(3).accumulate(true).check_sgemm();
    for (int i = 0; i < 12; ++i)
      GemmTester(kernel)
          .m(pick(1, 150))
          .n(pick(1, 300))
          .k(pick(1, 300))
          .threads(int(pick(1, 3)))
          .accumulate(i % 2)
          .bias(i % 3 == 0)
          .small_integers(i % 4 == 1)
          .check_sgemm();
  }
}
