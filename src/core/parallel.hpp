// Threads for one plan: a oneTBB arena of the plan's size, and a loop over independent tasks that
// hands each task the arena slot it runs on (to index per-thread scratch). Work is only ever split
// over independent outputs, never inside a reduction, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <memory>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

namespace fastconv::detail {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1
  int threads() const { return threads_; }

  // Runs f(task, slot) for task in [0, tasks), slot in [0, threads()).
  template <class F>
  void for_each(int64_t tasks, F&& f) const {
    if (tasks <= 0) return;
    if (!arena_ || tasks == 1) {
      for (int64_t t = 0; t < tasks; ++t) f(t, 0);
      return;
    }
    arena_->execute([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, tasks, 1), [&](const tbb::blocked_range<int64_t>& r) {
        const int slot = slot_index();
        for (int64_t t = r.begin(); t != r.end(); ++t) f(t, slot);
      });
    });
  }

 private:
  int slot_index() const;
  int threads_;
  std::shared_ptr<tbb::task_arena> arena_;  // shared by every pool of the same size
};

int hardware_threads();  // oneTBB's default concurrency (honours the process affinity mask)

// The arena every ThreadPool of `threads` (capped at hardware_threads()) uses; null for one thread.
std::shared_ptr<tbb::task_arena> shared_arena(int threads);

}  // namespace fastconv::detail
