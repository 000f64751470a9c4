// The cost model of Estimate mode: the work an implementation counts (WorkCounts), priced at rates
// measured on the development machine (AMD EPYC Zen 3, 2 cores) with the project's benches.
// Every constant of the model lives in the table below.
#include <algorithm>
#include <cmath>

#include "planner/planner.hpp"

namespace fastconv::detail {
namespace {

// Rates on one core, per instruction set. Units: GFLOP/s, G elements/s, GB/s.
struct Rates {
  double gemm, pack, direct, depthwise, scalar, transform, fft, complex, dram;
};
// Index: Isa::Sse2, Isa::Avx2, Isa::Avx512.
constexpr Rates kRates[] = {
    {20, 1.0, 10, 5, 1.5, 4, 4, 10, 20},     // sse2: no FMA, 4 lanes
    {88, 1.5, 50, 20, 2.0, 10, 8, 40, 20},   // avx2+fma
    {150, 2.0, 90, 35, 2.0, 16, 10, 70, 20},  // avx512: scaled, not measured here
};
constexpr double kParallelEfficiency = 0.92;  // two cores vs one on large layers
constexpr double kFixedOverheadSeconds = 2e-6;

// The microkernel loses speed on thin operands: the last partial tiles and short k loops.
double gemm_efficiency(const WorkCounts& w) {
  if (w.gemm_flops <= 0) return 1;
  const double k_eff = w.gemm_k / (w.gemm_k + 24.0);  // loop overhead and C tile load/store
  return std::max(0.2, k_eff);
}

}  // namespace

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
