// Catch2 main. Under FASTCONV_MAX_ISA=<isa> on a CPU that lacks <isa> the whole run is skipped with
// exit code 77 (CTest's SKIP_RETURN_CODE), so the per-instruction-set test runs show what they could
// not cover instead of silently passing on another path.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/cpu.hpp"

int main(int argc, char** argv) {
  if (const char* cap = std::getenv("FASTCONV_MAX_ISA"); cap && *cap) {
    const auto isa = fastconv::detail::parse_isa(cap);
    if (!fastconv::detail::isa_supported_by_cpu(isa)) {
      std::printf("skipped: this CPU has no %s (FASTCONV_MAX_ISA=%s)\n", fastconv::detail::isa_name(isa), cap);
      return 77;
    }
    if (fastconv::detail::best_isa() != isa) {
      std::printf("FASTCONV_MAX_ISA=%s but the kernels run %s\n", cap, fastconv::detail::isa_name(fastconv::detail::best_isa()));
      return 1;
    }
  }
  return Catch::Session().run(argc, argv);
}
