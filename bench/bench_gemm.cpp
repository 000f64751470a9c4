// The GEMM engine: the microkernel alone on in-cache packed panels (percent of one core's FMA
// peak, measured here with an FMA loop), and the threaded SGEMM at 1024^3 and 2048^3 beside
// OpenBLAS's cblas_sgemm when the bench was built with it.
//
//   build/bench/fastconv_bench_gemm --benchmark_enable_random_interleaving=true \
//       --benchmark_repetitions=9 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <vector>

#include "bench_common.hpp"
#include "core/aligned_buffer.hpp"
#include "core/parallel.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/sgemm.hpp"

#ifdef FASTCONV_HAVE_OPENBLAS
#include <cblas.h>
extern "C" char* openblas_get_corename(void);
extern "C" void openblas_set_num_threads(int);
#endif

using namespace fastconv;

namespace {

std::vector<float> random_vector(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  bench::fill_uniform(v.data(), n, rng);
  return v;
}

// One MR x NR tile of depth k (arg): A (MR x k) and B (k x NR) panels and C stay in L1.
void BM_Ukernel(benchmark::State& state, detail::Isa isa) {
  if (!detail::isa_supported_by_cpu(isa) || isa > detail::best_isa()) {
    state.SkipWithError("instruction set not available on this CPU");
    return;
  }
  const detail::SgemmKernel& kern = detail::sgemm_kernel(isa);
  const int mr = kern.blocking.mr, nr = kern.blocking.nr;
  const int64_t k = state.range(0);
  detail::AlignedBuffer<float> a(std::size_t(mr * k)), b(std::size_t(nr * k)), c(std::size_t(mr * nr));
  auto ra = random_vector(a.size(), 1), rb = random_vector(b.size(), 2);
  std::copy(ra.begin(), ra.end(), a.data());
  std::copy(rb.begin(), rb.end(), b.data());
  c.zero();
  for (auto _ : state) {
    kern.full(k, a.data(), b.data(), c.data(), nr, true, nullptr, nullptr, nullptr);
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * mr * nr * k;
  state.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = bench::peak_gflops(1);
  state.SetLabel(kern.name);
}

// The macro-kernel over an m x n block of depth k (args; 0: the kernel's MC and KC), packed panels
// from L2, C in L2 as well: what the loops add. The shallow blocks are 1x1 layers' (64->256 on 56x56:
// k = 64, a 400-pixel block, all 256 channels).
void BM_MacroKernel(benchmark::State& state) {
  const detail::SgemmKernel& kern = detail::sgemm_kernel(detail::best_isa());
  const int64_t m = state.range(0) ? state.range(0) : kern.blocking.mc, n = state.range(1),
                k = state.range(2) ? state.range(2) : kern.blocking.kc;
  detail::AlignedBuffer<float> a(std::size_t(m * k)), b(std::size_t(n * k)), c(std::size_t(m * n));
  auto ra = random_vector(a.size(), 1), rb = random_vector(b.size(), 2);
  std::copy(ra.begin(), ra.end(), a.data());
  std::copy(rb.begin(), rb.end(), b.data());
  c.zero();
  for (auto _ : state) {
    detail::gemm_macro_kernel(kern, m, n, k, a.data(), k * kern.blocking.mr, b.data(), k * kern.blocking.nr, c.data(),
                              n, true, nullptr);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = bench::peak_gflops(1);
  state.SetLabel(kern.name);
}

struct GemmData {
  std::vector<float> a, b, c;
  explicit GemmData(int64_t n)
      : a(random_vector(std::size_t(n * n), 1)), b(random_vector(std::size_t(n * n), 2)), c(std::size_t(n * n)) {}
};

void BM_Sgemm_fastconv(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int threads = int(state.range(1));
  GemmData d(n);
  detail::ThreadPool pool(threads);
  const detail::SgemmKernel& kern = detail::sgemm_kernel(detail::best_isa());
  for (auto _ : state) detail::sgemm(kern, pool, n, n, n, d.a.data(), n, d.b.data(), n, d.c.data(), n);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = bench::peak_gflops(threads);
  state.SetLabel(kern.name);
}

#ifdef FASTCONV_HAVE_OPENBLAS
void BM_Sgemm_openblas(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int threads = int(state.range(1));
  GemmData d(n);
  openblas_set_num_threads(threads);
  for (auto _ : state)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f, d.a.data(), int(n),
                d.b.data(), int(n), 0.0f, d.c.data(), int(n));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_GFLOP/s"] = bench::peak_gflops(threads);
  state.SetLabel(std::string("openblas ") + openblas_get_corename());
}
BENCHMARK(BM_Sgemm_openblas)->ArgsProduct({{1024, 2048}, {1, 2}})->UseRealTime()->Unit(benchmark::kMillisecond);
#endif

BENCHMARK_CAPTURE(BM_Ukernel, sse2, detail::Isa::Sse2)->Arg(256);
BENCHMARK_CAPTURE(BM_Ukernel, avx2, detail::Isa::Avx2)->Arg(256)->Arg(64);
BENCHMARK_CAPTURE(BM_Ukernel, avx512, detail::Isa::Avx512)->Arg(256)->Arg(64);
BENCHMARK(BM_MacroKernel)->Args({0, 512, 0})->Args({252, 384, 64})->Args({256, 400, 64});
BENCHMARK(BM_Sgemm_fastconv)->ArgsProduct({{1024, 2048}, {1, 2}})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
