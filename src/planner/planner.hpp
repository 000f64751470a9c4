// The planner: asks every solver for candidates, drops what does not fit, and ranks the rest by the
// cost model (Estimate) or by timing them (Measure).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/algorithm.hpp"

namespace fastconv::detail {

struct RankedImpl {
  std::unique_ptr<ConvImpl> impl;
  double estimate_ms = 0;
  double measured_ms = -1;  // < 0: not measured
  bool prepared = false;    // ConvImpl::prepare has run
  double time_ms() const { return measured_ms >= 0 ? measured_ms : estimate_ms; }
};

struct Ranking {
  std::vector<RankedImpl> ranked;            // applicable and within the limit, fastest first
  std::vector<Proposals::Declined> declined;  // everything else, with the reason
};

// An implementation's work in one execute, with the packing of its weights when they change with
// every execute (PlanOptions::weights_change): what Estimate mode prices.
WorkCounts work_per_execute(const ConvImpl& impl, const PlanContext& ctx);

// Validates the options and resolves threads and instruction set.
PlanContext make_context(const PlanOptions&);

// All candidates for the problem under the options (forced algorithm, implementation prefix,
// workspace limit). measure: time them (see measure.cpp for the budget); otherwise estimate.
Ranking rank_candidates(const Geometry&, const PlanContext&, const PlanOptions&, bool measure);

// The cost model: predicted seconds of one execute (cost_model.cpp).
double estimate_seconds(const WorkCounts&, const PlanContext&);
// Its parts that calibration fits through: the microkernel's efficiency on the GEMM's shape, and
// the speedup of `threads` over one on `parallel_tasks` whole tasks.
double gemm_efficiency(const WorkCounts&, const MachineModel&);
double parallel_speedup(double parallel_tasks, int threads, const MachineModel&);

// Times the candidates, interleaved, and fills measured_ms (measure.cpp).
void measure_candidates(std::vector<RankedImpl>&, const Geometry&, const PlanContext&);
// Whether Measure mode times this problem (its synthetic tensors fit 1 GiB).
bool measurable(const Geometry&);
// How many times measure_candidates has run in this process (lets tests see that wisdom skips it).
uint64_t measurements_performed();

// Builds the named implementation for the problem, or null when it does not apply or fit.
std::unique_ptr<ConvImpl> build_named(const Geometry&, const PlanContext&, const std::string& name);

}  // namespace fastconv::detail
