// Streaming im2col under a workspace budget against the unbounded lowering: the whole lowered matrix
// (C*R*S x P*Q, 28.9 MB for 256 -> 256 3x3 on 56x56) built, then one SGEMM, as classic im2col does.
//
//   build/bench/fastconv_bench_im2col_budget --benchmark_enable_random_interleaving=true \
//       --benchmark_repetitions=9 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "bench_common.hpp"
#include "core/aligned_buffer.hpp"
#include "core/geometry.hpp"
#include "core/parallel.hpp"
#include "fastconv/fastconv.hpp"
#include "gemm/sgemm.hpp"

using namespace fastconv;

namespace {

ConvProblem layer() { return parse_problem("n1c256h56w56k256r3s3_p1"); }

int threads() { return detail::hardware_threads(); }

void BM_Streaming(benchmark::State& state) {
  const ConvProblem p = layer();
  PlanOptions o;
  o.algorithm = Algorithm::Im2col;
  o.workspace_limit = std::size_t(state.range(0));
  const Plan plan = Plan::create(p, o);
  bench::LayerTensors d(p);
  const PackedWeights packed = plan.pack_weights(d.w.data(), d.b.data());
  std::vector<char> ws(plan.workspace_bytes() + 64);
  for (auto _ : state) plan.execute(d.x.data(), packed, d.y.data(), ws.data(), ws.size());
  state.counters["GFLOP/s"] = benchmark::Counter(flop_count(p), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["workspace_KiB"] = double(plan.workspace_bytes()) / 1024;
  state.SetLabel(plan.implementation());
}

// Classic im2col: lower the whole image (threads over channels), then the threaded SGEMM.
void BM_FullLowering(benchmark::State& state) {
  const ConvProblem p = layer();
  const detail::Geometry g(p);
  bench::LayerTensors d(p);
  const int64_t kdim = g.C * g.R * g.S, PQ = g.P * g.Q;
  detail::AlignedBuffer<float> lowered(std::size_t(kdim * PQ));
  detail::ThreadPool pool(threads());
  const detail::SgemmKernel& kernel = detail::sgemm_kernel(detail::best_isa());
  for (auto _ : state) {
    pool.for_each(kdim, [&](int64_t row, int) {
      const int64_t c = row / (g.R * g.S), r = row / g.S % g.R, s = row % g.S;
      float* dst = lowered.data() + row * PQ;
      for (int64_t oh = 0; oh < g.P; ++oh)
        for (int64_t ow = 0; ow < g.Q; ++ow) {
          const int64_t iy = oh - g.pad_t + r, ix = ow - g.pad_l + s;
          dst[oh * g.Q + ow] = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W ? d.x[std::size_t((c * g.H + iy) * g.W + ix)] : 0.0f;
        }
    });
    detail::sgemm(kernel, pool, g.K, PQ, kdim, d.w.data(), kdim, lowered.data(), PQ, d.y.data(), PQ, false, d.b.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flop_count(p), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["workspace_KiB"] = double(lowered.size() * sizeof(float)) / 1024;
}

BENCHMARK(BM_Streaming)->Arg(1 << 20)->Arg(int64_t(1) << 30)->Arg(64 << 10)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FullLowering)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
