// The instruction sets kernels are compiled for, and the one this CPU runs (capped by FASTCONV_MAX_ISA).
#pragma once

#include <string>

namespace fastconv::detail {

// Ordered: a higher value includes every lower one.
enum class Isa { Sse2 = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa);           // "sse2", "avx2", "avx512"
bool isa_supported_by_cpu(Isa);      // what CPUID reports, ignoring the cap
Isa best_isa();                      // best supported, capped by FASTCONV_MAX_ISA (read once)
Isa parse_isa(const std::string&);   // throws Error
bool cpu_is_intel();                 // CPUID's vendor

}  // namespace fastconv::detail
