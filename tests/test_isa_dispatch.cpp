// ISA safety: no code compiled for an instruction set above the cap (FASTCONV_MAX_ISA) or the CPU is
// entered while kernel tables are built and used. Every per-ISA table builder counts its entries
// (core/isa_dispatch.hpp); this test runs under each cap ([isa]) in a process of its own.
#include <catch2/catch.hpp>

#include <vector>

#include "core/isa_dispatch.hpp"
#include "fastconv/fastconv.hpp"

using namespace fastconv;

TEST_CASE("isa dispatch: planning and running every algorithm enters no code above the cap", "[isa][dispatch]") {
  ConvProblem dense;
  dense.in_channels = 4, dense.in_height = dense.in_width = 12;
  dense.out_channels = 5, dense.kernel_height = dense.kernel_width = 3;
  ConvProblem depthwise = dense;
  depthwise.in_channels = depthwise.out_channels = depthwise.groups = 4;
  ConvProblem large_kernel = dense;
  large_kernel.kernel_height = large_kernel.kernel_width = 7;
  for (const auto& [p, a] : {std::pair{dense, Algorithm::Direct}, std::pair{depthwise, Algorithm::Direct},
                             std::pair{dense, Algorithm::Im2col}, std::pair{dense, Algorithm::Winograd},
                             std::pair{large_kernel, Algorithm::FFT}, std::pair{dense, Algorithm::Auto}}) {
    PlanOptions o;
    o.algorithm = a;
    o.threads = 1;
    const Plan plan = Plan::create(p, o);
    std::vector<float> x(p.input_elements(), 1.0f), w(p.weight_elements(), 0.5f), y(p.output_elements());
    plan.execute(x.data(), w.data(), nullptr, y.data());
  }
  (void)find_algorithms(dense);
  const detail::Isa best = detail::best_isa();
  INFO("best " << detail::isa_name(best));
  // The counter works: the best set's builders were entered...
  CHECK(detail::isa_entries(best) > 0);
  // ...and no builder of a higher set was.
  for (detail::Isa isa : {detail::Isa::Avx2, detail::Isa::Avx512})
    if (isa > best) {
      INFO(detail::isa_name(isa) << " entered " << detail::isa_entries(isa) << " times");
      CHECK(detail::isa_entries(isa) == 0);
    }
}

TEST_CASE("isa dispatch: a table for an instruction set the CPU lacks is an Error, never entered", "[dispatch]") {
  for (detail::Isa isa : {detail::Isa::Sse2, detail::Isa::Avx2, detail::Isa::Avx512})
    if (!detail::isa_supported_by_cpu(isa)) {
      const auto before = detail::isa_entries(isa);
      CHECK_THROWS_AS(detail::require_cpu_runs(isa, "test"), Error);
      CHECK(detail::isa_entries(isa) == before);
    } else {
      CHECK_NOTHROW(detail::require_cpu_runs(isa, "test"));
    }
}
