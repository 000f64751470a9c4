// Candidate collection and ranking: the only code that walks the list of all algorithms.
#include "planner/planner.hpp"

#include <algorithm>
#include <sstream>

#include "core/aligned_buffer.hpp"
#include "core/verbose.hpp"
#include "planner/padded_copy.hpp"
#include "planner/solvers.hpp"
#include "planner/wisdom.hpp"

namespace fastconv::detail {

std::string workspace_too_small(std::size_t needed, std::size_t limit) {
  return "needs at least " + std::to_string(needed) + " bytes of workspace, above workspace_limit=" +
         std::to_string(limit);
}

// pack_weights runs on one thread and transforms or transposes as it writes: measured 0.7-2.4 ns per
// packed float on the AVX-512 Xeon (512x512 3x3: F(2x2) 8.0 ms, backward-data's W^T 5.7 ms, the
// forward's panels 1.8 ms) against 0.34 for a lowered element at the pack rate.
constexpr double kPackedFloatCost = 4.0;  // lowered elements per packed float

WorkCounts work_per_execute(const ConvImpl& impl, const PlanContext& ctx) {
  WorkCounts w = impl.work();
  // Per thread: the estimate divides the work among the threads, and packing is not.
  if (ctx.weights_change)
    w.pack_elements += kPackedFloatCost * double(ctx.threads) * double(impl.packed_weights_floats());
  return w;
}

PlanContext make_context(const PlanOptions& options) {
  if (options.algorithm < Algorithm::Auto || options.algorithm > Algorithm::FFT)
    throw Error("algorithm=" + std::to_string(static_cast<int>(options.algorithm)) + ": not an Algorithm");
  if (options.mode != PlanMode::Estimate && options.mode != PlanMode::Measure)
    throw Error("mode=" + std::to_string(static_cast<int>(options.mode)) + ": not a PlanMode");
  constexpr int kMaxThreads = 4096;
  if (options.threads < 0 || options.threads > kMaxThreads)
    throw Error("threads=" + std::to_string(options.threads) + ": must be 0 (all hardware threads) to " +
                std::to_string(kMaxThreads));
  PlanContext ctx;
  ctx.isa = best_isa();
  wisdom_load_from_environment();  // it may bring a calibrated machine model
  ctx.machine = machine_model(ctx.isa);
  ctx.threads = options.threads == 0 ? hardware_threads() : options.threads;
  ctx.workspace_limit = options.workspace_limit;
  ctx.mode = options.mode;
  if (options.direction < Direction::Forward || options.direction > Direction::BackwardWeights)
    throw Error("direction=" + std::to_string(static_cast<int>(options.direction)) + ": not a Direction");
  ctx.direction = options.direction;
  ctx.weights_change = options.weights_change;
  ctx.epilogue = make_epilogue(options.post_ops, ctx.isa);
  if (ctx.direction != Direction::Forward && ctx.epilogue.active())
    throw Error("post_ops=" + to_string(options.post_ops) + ": direction=" + to_string(ctx.direction) +
                " fuses no post-ops (only the forward does)");
  return ctx;
}

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Why the packed weights of `impl` cannot be allocated (their size overflows), or "".
std::string packed_weights_overflow(const ConvImpl& impl) {
  try {
    aligned_bytes(impl.packed_weights_floats(), sizeof(float));
    return "";
  } catch (const Error& e) {
    return std::string("packed weights: ") + e.what();
  }
}

// Asks one solver for its candidates. A padding mode other than zeros: the solver sees the problem
// of the padded copy, under what the copy leaves of the budget, and its proposals are wrapped.
// Every proposal gets the plan's epilogue.
void propose(const Solver& solver, const Geometry& g, const PlanContext& ctx, Proposals& out) {
  if (solver.direction != Direction::Forward && g.problem.padding_mode != PadMode::Zeros) {
    out.decline(solver.name, "padding_mode=" + to_string(g.problem.padding_mode) + ": the backward directions pad with zeros only");
    return;
  }
  if (g.problem.padding_mode == PadMode::Zeros) {
    solver.propose(g, ctx, out);
  } else {
    const std::size_t copy = padded_copy_bytes(g);
    if (copy > ctx.workspace_limit) {
      out.decline(solver.name, "the padded copy of the input for padding_mode=" + to_string(g.problem.padding_mode) +
                                   " " + workspace_too_small(copy, ctx.workspace_limit));
      return;
    }
    PlanContext inner_ctx = ctx;
    inner_ctx.workspace_limit = ctx.workspace_limit - copy;
    Proposals inner;
    solver.propose(padded_copy_geometry(g), inner_ctx, inner);
    for (auto& impl : inner.impls()) out.add(wrap_padded_copy(g, std::move(impl)));
    for (const auto& d : inner.declined()) out.decline(d.name, d.reason);
  }
  for (auto& impl : out.impls()) impl->set_epilogue(ctx.epilogue);
}

// Asks every solver (of the requested algorithm) for its candidates.
Ranking collect(const Geometry& g, const PlanContext& ctx, const PlanOptions& options) {
  Ranking out;
  for (const Solver& solver : all_solvers()) {
    if (solver.direction != ctx.direction) continue;
    if (options.algorithm != Algorithm::Auto && solver.algorithm != options.algorithm) continue;
    Proposals proposals;
    propose(solver, g, ctx, proposals);
    for (auto& impl : proposals.impls()) {
      if (!options.implementation.empty() && !starts_with(impl->name(), options.implementation)) {
        out.declined.push_back({impl->name(), "not requested (implementation=" + options.implementation + ")"});
      } else if (std::string why = packed_weights_overflow(*impl); !why.empty()) {
        out.declined.push_back({impl->name(), why});
      } else if (impl->workspace_bytes() > ctx.workspace_limit) {
        // Solvers re-block to fit; this only catches one that did not.
        out.declined.push_back({impl->name(), workspace_too_small(impl->workspace_bytes(), ctx.workspace_limit)});
      } else {
        RankedImpl r;
        r.estimate_ms = 1e3 * estimate_seconds(work_per_execute(*impl, ctx), ctx);
        r.impl = std::move(impl);
        out.ranked.push_back(std::move(r));
      }
    }
    for (const auto& d : proposals.declined()) out.declined.push_back(d);
  }
  return out;
}

}  // namespace

Ranking rank_candidates(const Geometry& g, const PlanContext& ctx, const PlanOptions& options, bool measure) {
  Ranking r = collect(g, ctx, options);
  if (measure && !r.ranked.empty()) measure_candidates(r.ranked, g, ctx);
  std::stable_sort(r.ranked.begin(), r.ranked.end(),
                   [](const RankedImpl& a, const RankedImpl& b) { return a.time_ms() < b.time_ms(); });
  if (verbose_level() >= 2)
    for (const auto& d : r.declined)
      verbose_print("declined " + d.name + " for " + to_string(g.problem) + ": " + d.reason);
  return r;
}

std::unique_ptr<ConvImpl> build_named(const Geometry& g, const PlanContext& ctx, const std::string& name) {
  for (const Solver& solver : all_solvers()) {
    if (solver.direction != ctx.direction) continue;
    Proposals proposals;
    propose(solver, g, ctx, proposals);
    for (auto& impl : proposals.impls())
      if (impl->name() == name && impl->workspace_bytes() <= ctx.workspace_limit) return std::move(impl);
  }
  return nullptr;
}

}  // namespace fastconv::detail
