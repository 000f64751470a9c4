// Shared by the benches: the machine peak they report against, measured once, and their data.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

#include "core/cpu.hpp"
#include "core/fma_peak.hpp"
#include "fastconv/fastconv.hpp"

namespace fastconv::bench {

// Float32 FMA peak of the best instruction set on `threads` threads, in GFLOP/s (cached).
inline double peak_gflops(int threads) {
  static double cache[8] = {};
  if (threads < 1 || threads > 7) return detail::measure_fma_peak_gflops(detail::best_isa(), threads);
  if (cache[threads] == 0) cache[threads] = detail::measure_fma_peak_gflops(detail::best_isa(), threads, 0.3);
  return cache[threads];
}

// Uniform data in [-1, 1), drawn in order from rng.
inline void fill_uniform(float* p, std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1, 1);
  for (std::size_t i = 0; i < n; ++i) p[i] = d(rng);
}

// A layer's tensors: input, weights and bias of uniform data (seed 1, in that order), and the output.
struct LayerTensors {
  std::vector<float> x, w, b, y;
  explicit LayerTensors(const ConvProblem& p)
      : x(p.input_elements()), w(p.weight_elements()), b(std::size_t(p.out_channels)), y(p.output_elements()) {
    std::mt19937 rng(1);
    for (auto* v : {&x, &w, &b}) fill_uniform(v->data(), v->size(), rng);
  }
};

}  // namespace fastconv::bench
