// Fused post-ops against the same work as a separate pass, over the shape suite (the built-in
// suite, or FASTCONV_SUITE=file.csv), the planner's pick for each: per shape
//   bare:     conv + bias;
//   fused:    conv + bias + residual, then relu, fused where the output is written;
//   separate: conv + bias, then y = relu(y + r) as a second, threaded pass over y with the same
//             vectorised kernel (what a user pays without fusion).
// Interleave and repeat to compare (ratios of medians):
//   build/bench/fastconv_bench_post_ops --benchmark_enable_random_interleaving=true \
//       --benchmark_repetitions=9 --benchmark_report_aggregates_only=true
// FASTCONV_BENCH_THREADS sets the threads (default: all); FASTCONV_BENCH_POST_OPS the activation
// (default relu) with "+residual" to add one (default relu+residual).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "core/epilogue.hpp"
#include "core/parallel.hpp"
#include "fastconv/fastconv.hpp"
#include "suite.hpp"

using namespace fastconv;

namespace {

int bench_threads() {
  const char* t = std::getenv("FASTCONV_BENCH_THREADS");
  return t && *t ? std::atoi(t) : detail::hardware_threads();
}

PostOps bench_post_ops() {
  const char* e = std::getenv("FASTCONV_BENCH_POST_OPS");
  std::string s = e && *e ? e : "relu+residual";
  const std::string suffix = "+residual";
  const bool residual = s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  if (residual) s.erase(s.size() - suffix.size());
  PostOps po = parse_post_ops(s);
  po.residual = residual;
  return po;
}

enum class Variant { Bare, Fused, Separate };

void BM_PostOps(benchmark::State& state, ConvProblem p, int threads, PostOps po, Variant v) {
  PlanOptions o;
  o.threads = threads;
  if (v == Variant::Fused) o.post_ops = po;
  const Plan plan = Plan::create(p, o);
  bench::LayerTensors d(p);
  std::vector<float> r(d.y.size());
  std::mt19937 rng(7);
  bench::fill_uniform(r.data(), r.size(), rng);
  const PackedWeights packed = plan.pack_weights(d.w.data(), d.b.data());
  const detail::Epilogue e = detail::make_epilogue(po, detail::best_isa());
  const detail::ThreadPool pool(threads);
  const int64_t n = int64_t(d.y.size()), block = 1 << 14, blocks = (n + block - 1) / block;
  const float* residual = po.residual ? r.data() : nullptr;
  for (auto _ : state) {
    if (v == Variant::Fused) {
      plan.execute(d.x.data(), packed, d.y.data(), residual);
    } else {
      plan.execute(d.x.data(), packed, d.y.data());
      if (v == Variant::Separate)
        pool.for_each(blocks, [&](int64_t i, int) {
          const int64_t b0 = i * block, len = std::min(block, n - b0);
          e.apply(d.y.data() + b0, residual ? residual + b0 : nullptr, len);
        });
    }
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flop_count(p), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(plan.implementation());
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const int threads = bench_threads();
  const PostOps po = bench_post_ops();
  const char* suite_file = std::getenv("FASTCONV_SUITE");
  const auto suite = suite_file ? tools::load_suite(suite_file) : tools::builtin_suite();
  for (const auto& shape : suite)
    for (auto [name, v] : {std::pair{"bare", Variant::Bare}, {"fused", Variant::Fused}, {"separate", Variant::Separate}})
      benchmark::RegisterBenchmark((shape.name + "/" + name).c_str(), BM_PostOps, shape.problem, threads, po, v)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
