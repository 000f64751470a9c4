// Shared by the Google Benchmark benches: the machine peak they report against, measured once.
#pragma once

#include "core/cpu.hpp"
#include "core/fma_peak.hpp"

namespace fastconv::bench {

// Float32 FMA peak of the best instruction set on `threads` threads, in GFLOP/s (cached).
inline double peak_gflops(int threads) {
  static double cache[8] = {};
  if (threads < 1 || threads > 7) return detail::measure_fma_peak_gflops(detail::best_isa(), threads);
  if (cache[threads] == 0) cache[threads] = detail::measure_fma_peak_gflops(detail::best_isa(), threads, 0.3);
  return cache[threads];
}

}  // namespace fastconv::bench
