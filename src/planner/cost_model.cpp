// The cost model of Estimate mode: the work an implementation counts (WorkCounts), priced at the
// rates of the machine model (src/core/machine_model.cpp: per-ISA defaults, or what `fastconv
// calibrate` measured). The form lives here; every number comes from the model.
#include <algorithm>
#include <cmath>

#include "planner/planner.hpp"

namespace fastconv::detail {
// The microkernel loses speed on thin operands: the last partial tiles and short k loops.
double gemm_efficiency(const WorkCounts& w, const MachineModel& m) {
  if (w.gemm_flops <= 0) return 1;
  const double k_eff = w.gemm_k / (w.gemm_k + m.gemm_short_k_steps);  // loop overhead and C tile load/store
  return std::max(0.2, k_eff);
}

double parallel_speedup(double parallel_tasks, int threads, const MachineModel& m) {
  const double tasks = std::max(1.0, parallel_tasks);
  const double used = std::min<double>(threads, tasks);
  // Whole tasks per thread: 3 tasks on 2 threads take 2 rounds.
  const double rounds = std::ceil(tasks / used);
  return tasks / rounds * (used > 1 ? m.parallel_efficiency : 1.0);
}

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
  a.waited_dram_bytes += b.waited_dram_bytes;
  a.waited_cache_bytes += b.waited_cache_bytes;
  a.parallel_tasks = std::max(a.parallel_tasks, b.parallel_tasks);
  return a;
}

WorkCounts operator*(WorkCounts a, double times) {
  a.gemm_flops *= times, a.pack_elements *= times, a.direct_flops *= times, a.depthwise_flops *= times;
  a.scalar_flops *= times, a.transform_flops *= times, a.fft_flops *= times, a.complex_flops *= times;
  a.dram_bytes *= times, a.waited_dram_bytes *= times, a.waited_cache_bytes *= times;
  return a;
}

double estimate_seconds(const WorkCounts& w, const PlanContext& ctx) {
  const MachineModel& m = ctx.machine;
  const WorkRates& r = m.rates;
  double compute = w.gemm_flops / (r.gemm * 1e9 * gemm_efficiency(w, m)) + w.pack_elements / (r.pack * 1e9) +
                   w.direct_flops / (r.direct * 1e9) + w.depthwise_flops / (r.depthwise * 1e9) +
                   w.scalar_flops / (r.scalar * 1e9) + w.transform_flops / (r.transform * 1e9) +
                   w.fft_flops / (r.fft * 1e9) + w.complex_flops / (r.complex * 1e9);
  compute /= std::max(1.0, parallel_speedup(w.parallel_tasks, ctx.threads, m));
  const double memory = w.dram_bytes / (r.dram * 1e9);
  return std::max(compute, memory) + m.waited_read_seconds(w.waited_dram_bytes, w.waited_cache_bytes) +
         m.fixed_overhead_seconds;
}

}  // namespace fastconv::detail
