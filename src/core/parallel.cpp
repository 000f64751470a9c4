#include "core/parallel.hpp"

#include <tbb/info.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>

namespace fastconv::detail {

// One arena per size for the whole process. oneTBB's workers linger in the arena they last served;
// with an arena per plan, a network that alternates between plans would find the workers elsewhere
// and run its layers partly serial.
std::shared_ptr<tbb::task_arena> shared_arena(int threads) {
  threads = std::min(threads, hardware_threads());
  if (threads <= 1) return nullptr;
  static std::mutex mutex;
  static std::map<int, std::shared_ptr<tbb::task_arena>> arenas;
  std::lock_guard<std::mutex> lock(mutex);
  auto& arena = arenas[threads];
  if (!arena) {
    arena = std::make_shared<tbb::task_arena>(threads);
    arena->initialize();
  }
  return arena;
}

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  // More threads than the hardware runs would only wait for each other (and oneTBB warns): the
  // arena is capped, while work and scratch stay partitioned for `threads`, so results do not change.
  if (threads_ > 1) arena_ = shared_arena(threads_);
}

int ThreadPool::slot_index() const {
  const int slot = tbb::this_task_arena::current_thread_index();
  // Inside our own arena a slot is always in [0, threads). Anything else is a bug: fail loudly
  // rather than share per-thread scratch between two threads.
  if (slot < 0 || slot >= threads_) throw std::logic_error("fastconv: task ran outside its arena");
  return slot;
}

int hardware_threads() { return tbb::info::default_concurrency(); }

std::atomic<TaskRunner> g_task_runner{nullptr};

}  // namespace fastconv::detail

namespace fastconv {
void set_task_runner(TaskRunner runner) { detail::g_task_runner.store(runner, std::memory_order_release); }
TaskRunner task_runner() { return detail::g_task_runner.load(std::memory_order_acquire); }

}  // namespace fastconv
