#include "core/fma_peak.hpp"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/isa_dispatch.hpp"

namespace fastconv::detail {
namespace {
template <double (*F)(int64_t)>
auto loop_of() -> double (*)(int64_t) { return F; }
}  // namespace

double measure_fma_peak_gflops(Isa isa, int threads, double seconds) {
  using LoopFn = double (*)(int64_t);
  const LoopFn loop = isa_table<LoopFn, loop_of<fma_peak_loop_sse2>, loop_of<fma_peak_loop_avx2>,
                                loop_of<fma_peak_loop_avx512>>(isa, "fma peak");
  // Calibrate the iteration count on one thread, then run every thread at once.
  int64_t iters = 1 << 16;
  using clock = std::chrono::steady_clock;
  while (true) {
    const auto t0 = clock::now();
    loop(iters);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (s > 0.02) {
      iters = int64_t(double(iters) * seconds / s) + 1;
      break;
    }
    iters *= 4;
  }
  std::vector<double> rate(std::size_t(threads), 0.0);
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ready++;
      while (ready.load() < threads) {
      }
      const auto t0 = clock::now();
      const double flops = loop(iters);
      rate[std::size_t(t)] = flops / std::chrono::duration<double>(clock::now() - t0).count();
    });
  for (auto& th : pool) th.join();
  double total = 0;
  for (double r : rate) total += r;
  return total / 1e9;
}

}  // namespace fastconv::detail
