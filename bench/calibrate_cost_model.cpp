// Calibration data for the planner's cost model (src/planner/cost_model.cpp): every implementation
// on every shape of a suite, its measured time (median of back-to-back batches) beside the work it
// counts (WorkCounts) and the model's current estimate, as CSV on stdout. bench/fit_cost_model.py
// turns it into the rate table.
//
//   build/bench/fastconv_calibrate_cost_model [--threads N] [--suite FILE.csv] > calibration.csv
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "core/aligned_buffer.hpp"
#include "core/geometry.hpp"
#include "planner/planner.hpp"
#include "suite.hpp"

using namespace fastconv;
using namespace fastconv::detail;

namespace {

double median_ms(const ConvImpl& impl, const Geometry& g, const ThreadPool& pool) {
  AlignedBuffer<float> x(std::size_t(g.N * g.input_image())), w(std::size_t(g.K * g.Cg * g.R * g.S)),
      b(std::size_t(g.K)), y(std::size_t(g.N * g.output_image())), packed(impl.packed_weights_floats());
  AlignedBuffer<char> ws(impl.workspace_bytes());
  std::mt19937 rng(1);
  for (auto* v : {&x, &w, &b}) bench::fill_uniform(v->data(), v->size(), rng);
  impl.pack_weights(w.data(), b.data(), packed.data());
  auto run = [&] { impl.execute(x.data(), packed.data(), y.data(), ws.data(), pool); };
  run();
  const auto t0 = std::chrono::steady_clock::now();
  run();
  const double first = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (first > 200) return first;  // slow candidates: one run says enough
  const int repeat = int(std::clamp(3.0 / std::max(first, 1e-3), 1.0, 200.0));
  std::vector<double> samples;
  for (int s = 0; s < 5; ++s) {
    const auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < repeat; ++i) run();
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count() / repeat);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = hardware_threads();
  std::string suite_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--suite")) suite_file = argv[i + 1];
  }
  const auto suite = suite_file.empty() ? tools::builtin_suite() : tools::load_suite(suite_file);
  PlanOptions options;
  options.threads = threads;
  const PlanContext ctx = make_context(options);
  const ThreadPool pool(threads);
  std::printf("shape,implementation,isa,threads,measured_ms,estimated_ms,gemm_flops,gemm_m,gemm_n,gemm_k,pack_elements,"
              "direct_flops,depthwise_flops,scalar_flops,transform_flops,fft_flops,complex_flops,dram_bytes,"
              "parallel_tasks\n");
  for (const auto& shape : suite) {
    const Geometry g(shape.problem);
    Ranking r = rank_candidates(g, ctx, options, false);
    for (auto& c : r.ranked) {
      c.impl->prepare(PlanMode::Estimate);
      const double ms = median_ms(*c.impl, g, pool);
      const WorkCounts w = c.impl->work();
      std::printf("%s,%s,%s,%d,%.5f,%.5f,%g,%g,%g,%g,%g,%g,%g,%g,%g,%g,%g,%g,%g\n", shape.name.c_str(),
                  c.impl->name().c_str(), isa_name(ctx.isa), threads, ms, c.estimate_ms, w.gemm_flops, w.gemm_m,
                  w.gemm_n, w.gemm_k, w.pack_elements, w.direct_flops, w.depthwise_flops, w.scalar_flops,
                  w.transform_flops, w.fft_flops, w.complex_flops, w.dram_bytes, w.parallel_tasks);
      std::fflush(stdout);
    }
  }
  return 0;
}
