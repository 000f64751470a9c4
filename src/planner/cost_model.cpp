// The cost model of Estimate mode: the work an implementation counts (WorkCounts), priced at rates
// measured on the development machine (AMD EPYC Zen 3, 2 cores) with the project's benches.
// Every constant of the model lives here.
#include <algorithm>
#include <cmath>

#include "planner/planner.hpp"

namespace fastconv::detail {
namespace {

// Rates on one core, per instruction set. Units: GFLOP/s, G elements/s, GB/s. Fitted by
// bench/fit_cost_model.py to bench/calibrate_cost_model.cpp's timings of every implementation on the
// 34 shapes of shapes/suite.csv at 2 threads (Zen 3), the Winograd transform rate fixed at what the
// transforms measure alone (the data cannot separate it from the products). These are effective
// rates of the counts each implementation reports, not peaks. AVX-512 cannot run on the development
// machine: its row is the AVX2 row scaled by the usual gain of twice the lanes at a lower clock.
// Checked since against calibration runs on two AVX-512 machines (a Xeon, Sapphire/Emerald Rapids
// class, and a Zen 5; docs/results/xeon-avx512/): a least-squares refit of this row on either picks
// worse than the row as it is, so it stays (the gap was im2col's strided gather, now counted).
struct Rates {
  double gemm, pack, direct, depthwise, scalar, transform, fft, complex, dram;
};
// Index: Isa::Sse2, Isa::Avx2, Isa::Avx512.
constexpr Rates kRates[] = {
    {45.8, 1.42, 31.3, 26.7, 7.2, 6.0, 11.3, 36.2, 20},    // sse2 (fitted)
    {107, 2.44, 88.9, 86.6, 1.93, 18.0, 10.9, 57.8, 20},   // avx2+fma (fitted)
    {170, 2.9, 140, 135, 1.93, 28.0, 13.0, 90.0, 20},      // avx512 (scaled, not measured)
};
constexpr double kParallelEfficiency = 0.92;  // two cores against one on large layers
constexpr double kFixedOverheadSeconds = 30e-6;  // per execute: thread wake-up, first touches (fitted)

// The microkernel loses speed on thin operands: the last partial tiles and short k loops.
double gemm_efficiency(const WorkCounts& w) {
  if (w.gemm_flops <= 0) return 1;
  const double k_eff = w.gemm_k / (w.gemm_k + 24.0);  // loop overhead and C tile load/store
  return std::max(0.2, k_eff);
}

}  // namespace

WorkCounts& operator+=(WorkCounts& a, const WorkCounts& b) {
  if (b.gemm_flops > a.gemm_flops) a.gemm_m = b.gemm_m, a.gemm_n = b.gemm_n, a.gemm_k = b.gemm_k;
  a.gemm_flops += b.gemm_flops;
  a.pack_elements += b.pack_elements;
  a.direct_flops += b.direct_flops;
  a.depthwise_flops += b.depthwise_flops;
  a.scalar_flops += b.scalar_flops;
  a.transform_flops += b.transform_flops;
  a.fft_flops += b.fft_flops;
  a.complex_flops += b.complex_flops;
  a.dram_bytes += b.dram_bytes;
  a.parallel_tasks = std::max(a.parallel_tasks, b.parallel_tasks);
  return a;
}

WorkCounts operator*(WorkCounts a, double times) {
  a.gemm_flops *= times, a.pack_elements *= times, a.direct_flops *= times, a.depthwise_flops *= times;
  a.scalar_flops *= times, a.transform_flops *= times, a.fft_flops *= times, a.complex_flops *= times;
  a.dram_bytes *= times;
  return a;
}

double estimate_seconds(const WorkCounts& w, const PlanContext& ctx) {
  const Rates& r = kRates[static_cast<int>(ctx.isa)];
  double compute = w.gemm_flops / (r.gemm * 1e9 * gemm_efficiency(w)) + w.pack_elements / (r.pack * 1e9) +
                   w.direct_flops / (r.direct * 1e9) + w.depthwise_flops / (r.depthwise * 1e9) +
                   w.scalar_flops / (r.scalar * 1e9) + w.transform_flops / (r.transform * 1e9) +
                   w.fft_flops / (r.fft * 1e9) + w.complex_flops / (r.complex * 1e9);
  const double tasks = std::max(1.0, w.parallel_tasks);
  const double threads = std::min<double>(ctx.threads, tasks);
  // Whole tasks per thread: 3 tasks on 2 threads take 2 rounds.
  const double rounds = std::ceil(tasks / threads);
  const double speedup = tasks / rounds * (threads > 1 ? kParallelEfficiency : 1.0);
  compute /= std::max(1.0, speedup);
  const double memory = w.dram_bytes / (r.dram * 1e9);
  return std::max(compute, memory) + kFixedOverheadSeconds;
}

}  // namespace fastconv::detail
