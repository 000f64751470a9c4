// Separable max pooling: the max over the kernel's width first, a row at a time into a plane of H x Q
// row maxima (vectors when the stride is 1 or 2), then the max over the kernel's height, a vector of
// output columns at a time; planes split over fastconv's threads, the kernel per instruction set
// (max_pool_impl.hpp). PyTorch 1.13's NCHW max pool is a scalar loop per output, and the
// strided-view formulation it replaced here cost 1.8 ms per ResNet-50 forward at batch 1 and 5 ms per
// VGG-16 one.
#include "max_pool.hpp"

#include <algorithm>
#include <limits>

#include "core/aligned_buffer.hpp"
#include "core/cpu.hpp"
#include "core/parallel.hpp"
#include "core/partition.hpp"

namespace fastconv_python {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// The widest kernel this CPU runs whose vectors fit in an output row (narrower rows would run the
// scalar tails only: VGG-16's last pool has 7 columns).
PoolPlaneFn pool_plane_for(const PoolShape& s) {
  using fastconv::detail::Isa;
  const Isa isa = fastconv::detail::best_isa();
  if (isa == Isa::Avx512 && s.Q >= 16) return pool_plane_avx512();
  if (isa != Isa::Sse2 && s.Q >= 8) return pool_plane_avx2();
  return pool_plane_sse2();
}

}  // namespace

void max_pool2d(const float* x, float* y, const PoolShape& s, int threads) {
  // Each thread slot: one padded input row (-inf on both sides) and the plane's row maxima, allocated
  // once per call (not per task), each slot's on cache lines of its own: two threads writing the rows
  // of neighbouring slots would pass the line they share back and forth on every row (2 threads ran
  // slower than 1 on ResNet-50's stem pool).
  const int64_t padded_width = padded_row_floats(s), maxima_floats = s.H * s.Q;
  // On fastconv's own threads, as its convolutions (oneTBB's arena of that size, or the task runner
  // fastconv.set_threading installed): between two convolutions of a network, a pool on torch's
  // OpenMP team would wake workers that then spin on the cores the next convolution needs.
  const int64_t tasks = fastconv::detail::balanced_tasks(s.planes, threads, fastconv::detail::kBalancedTasksPerThread);
  const fastconv::detail::ThreadPool pool(threads);
  const fastconv::detail::ThreadScratch padded_rows(sizeof(float) * std::size_t(padded_width));
  const fastconv::detail::ThreadScratch row_maxima_planes(sizeof(float) * std::size_t(maxima_floats),
                                                          padded_rows.total(pool.threads()));
  fastconv::detail::AlignedBuffer<unsigned char> scratch(row_maxima_planes.total(pool.threads()));
  for (int slot = 0; slot < pool.threads(); ++slot)
    std::fill_n(padded_rows.of(scratch.data(), slot), padded_width, kMinusInf);
  const PoolPlaneFn pool_plane = pool_plane_for(s);
  pool.for_each(tasks, [&](int64_t task, int slot) {
    const fastconv::detail::Range planes = fastconv::detail::run_of(s.planes, tasks, task);
    for (int64_t plane = planes.begin; plane < planes.end; ++plane)
      pool_plane(x + plane * s.H * s.W, y + plane * s.P * s.Q, s, padded_rows.of(scratch.data(), slot),
                 row_maxima_planes.of(scratch.data(), slot));
  });
}

}  // namespace fastconv_python
