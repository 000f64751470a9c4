// Layer bench over the shape suite (data-driven: the built-in suite, or FASTCONV_SUITE=file.csv):
// one benchmark per (shape, implementation), one for the planner's pick ("auto"), and oneDNN on
// NCHW data (reorders included, weights prepared ahead) when the bench was built with it. Threads:
// FASTCONV_BENCH_THREADS (default: all). Winograd and FFT report their phases as counters.
//
//   FASTCONV_BENCH_THREADS=1 build/bench/fastconv_bench_layers --benchmark_filter=1x1 \
//       --benchmark_enable_random_interleaving=true --benchmark_repetitions=9 \
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "core/parallel.hpp"
#include "core/phase_stats.hpp"
#include "fastconv/fastconv.hpp"
#include "onednn_baseline.hpp"
#include "suite.hpp"
#include "thread_pinning.hpp"

using namespace fastconv;

namespace {

int bench_threads() {
  const char* t = std::getenv("FASTCONV_BENCH_THREADS");
  return t && *t ? std::atoi(t) : detail::hardware_threads();
}

void report(benchmark::State& state, const ConvProblem& p, int threads) {
  state.counters["GFLOP/s"] = benchmark::Counter(flop_count(p), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = bench::peak_gflops(threads);
}

void BM_Layer(benchmark::State& state, ConvProblem p, PlanOptions o) {
  const Plan plan = Plan::create(p, o);
  bench::LayerTensors d(p);
  const PackedWeights packed = plan.pack_weights(d.w.data(), d.b.data());
  std::vector<char> ws(plan.workspace_bytes() + 64);
  auto& phases = detail::PhaseStats::global();
  phases.reset();
  phases.enable(true);
  for (auto _ : state) plan.execute(d.x.data(), packed, d.y.data(), ws.data(), ws.size());
  phases.enable(false);
  // Multi-phase algorithms: each phase's share of the (thread-summed) time, in percent.
  double total = 0;
  for (const auto& [name, seconds] : phases.snapshot()) total += seconds;
  for (const auto& [name, seconds] : phases.snapshot()) state.counters[name + "_%"] = 100 * seconds / total;
  report(state, p, plan.threads());
  state.counters["workspace_KiB"] = double(plan.workspace_bytes()) / 1024;
  state.SetLabel(plan.implementation());
}

void BM_Onednn(benchmark::State& state, ConvProblem p, int threads) {
  bench::LayerTensors d(p);
  tools::OnednnConv conv(p, d.w.data(), d.b.data(), threads);
  for (auto _ : state) conv.run(d.x.data(), d.y.data());
  report(state, p, threads);
  state.SetLabel(conv.implementation());
}

void register_all() {
  const int threads = bench_threads();
  const char* suite_file = std::getenv("FASTCONV_SUITE");
  const auto suite = suite_file ? tools::load_suite(suite_file) : tools::builtin_suite();
  for (const auto& shape : suite) {
    PlanOptions base;
    base.threads = threads;
    for (const Candidate& c : find_algorithms(shape.problem, base)) {
      if (!c.applicable) continue;
      PlanOptions o = base;
      o.algorithm = c.algorithm;
      o.implementation = c.implementation;
      benchmark::RegisterBenchmark((shape.name + "/" + c.implementation).c_str(), BM_Layer, shape.problem, o)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark((shape.name + "/auto").c_str(), BM_Layer, shape.problem, base)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    if (tools::onednn_available())
      benchmark::RegisterBenchmark((shape.name + "/onednn").c_str(), BM_Onednn, shape.problem, threads)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (tools::onednn_available()) tools::pin_fastconv_threads(bench_threads());  // see thread_pinning.hpp
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
