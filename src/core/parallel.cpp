#include "core/parallel.hpp"

#include <tbb/info.h>

#include <algorithm>
#include <stdexcept>

namespace fastconv::detail {

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  // More threads than the hardware runs would only wait for each other (and oneTBB warns): the
  // arena is capped, while work and scratch stay partitioned for `threads`, so results do not change.
  const int arena_threads = std::min(threads_, hardware_threads());
  if (threads_ > 1 && arena_threads > 1) {
    arena_ = std::make_unique<tbb::task_arena>(arena_threads);
    arena_->initialize();
  }
}

int ThreadPool::slot_index() const {
  const int slot = tbb::this_task_arena::current_thread_index();
  // Inside our own arena a slot is always in [0, threads). Anything else is a bug: fail loudly
  // rather than share per-thread scratch between two threads.
  if (slot < 0 || slot >= threads_) throw std::logic_error("fastconv: task ran outside its arena");
  return slot;
}

int hardware_threads() { return tbb::info::default_concurrency(); }

}  // namespace fastconv::detail
