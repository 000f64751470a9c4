// The machine's float32 FMA peak, measured with an FMA loop on independent registers: the bar the
// benches report their kernels against ("% of peak").
#pragma once

#include <cstdint>

#include "core/cpu.hpp"

namespace fastconv::detail {

// GFLOP/s of `threads` threads running the FMA loop of `isa` at once for about `seconds`.
double measure_fma_peak_gflops(Isa isa, int threads, double seconds = 0.2);

// The per-ISA loops: perform `iters` x 12 vector FMAs, return the floating-point operations done.
double fma_peak_loop_sse2(int64_t iters);
double fma_peak_loop_avx2(int64_t iters);
double fma_peak_loop_avx512(int64_t iters);

}  // namespace fastconv::detail
