// CPU feature detection, and the FASTCONV_MAX_ISA cap that lets tests reach every path.
// GCC's __builtin_cpu_supports checks that the OS saves the YMM/ZMM state (XGETBV), which
// xsimd 8.1's available_architectures() does not.
#include "core/cpu.hpp"

#include <cstdlib>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Sse2: return "sse2";
  }
  return "?";
}

Isa parse_isa(const std::string& s) {
  if (s == "avx512") return Isa::Avx512;
  if (s == "avx2") return Isa::Avx2;
  if (s == "sse2" || s == "generic") return Isa::Sse2;
  throw Error("FASTCONV_MAX_ISA=" + s + ": expected avx512, avx2 or sse2");
}

bool isa_supported_by_cpu(Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    // The AVX-512 kernels are compiled with F, DQ, BW and VL (Skylake-SP and later).
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("fma");
    case Isa::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Sse2: return __builtin_cpu_supports("sse2");
  }
  return false;
}

bool cpu_is_intel() {
  static const bool intel = [] {
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") != 0;
  }();
  return intel;
}

Isa best_isa() {
  static const Isa best = [] {
    Isa cap = Isa::Avx512;
    if (const char* env = std::getenv("FASTCONV_MAX_ISA"); env && *env) cap = parse_isa(env);
    for (Isa isa : {Isa::Avx512, Isa::Avx2})
      if (isa <= cap && isa_supported_by_cpu(isa)) return isa;
    return Isa::Sse2;
  }();
  return best;
}

}  // namespace fastconv::detail
