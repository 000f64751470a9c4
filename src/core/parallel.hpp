// Threads for one plan: a oneTBB arena of the plan's size, and a loop over independent tasks that
// hands each task the arena slot it runs on (to index per-thread scratch). Work is only ever split
// over independent outputs, never inside a reduction, so results do not depend on the thread count.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

// The host's runner (fastconv::set_task_runner), or null for oneTBB.
extern std::atomic<TaskRunner> g_task_runner;

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads >= 1
  int threads() const { return threads_; }

  // Runs f(task, slot) for task in [0, tasks), slot in [0, threads()).
  template <class F>
  void for_each(int64_t tasks, F&& f) const {
    if (tasks <= 0) return;
    if (threads_ > 1 && tasks > 1)
      if (const TaskRunner runner = g_task_runner.load(std::memory_order_acquire)) {
        run_on_host(runner, tasks, f);
        return;
      }
    if (!arena_ || tasks == 1) {  // one thread, one task, or one hardware thread
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
  // The host's runner must not see an exception: the first one is kept, the remaining tasks are
  // skipped, and it is rethrown here once the runner returns.
  template <class F>
  void run_on_host(TaskRunner runner, int64_t tasks, F& f) const {
    struct Context {
      F* f;
      int threads;
      std::atomic<bool> failed{false};
      std::exception_ptr error{};
    } ctx{&f, threads_, {false}, {}};
    runner(tasks, threads_, [](void* c, int64_t task, int slot) {
      auto& x = *static_cast<Context*>(c);
      if (x.failed.load(std::memory_order_relaxed)) return;
      try {
        if (slot < 0 || slot >= x.threads) throw std::logic_error("fastconv: the task runner gave a slot out of range");
        (*x.f)(task, slot);
      } catch (...) {
        if (!x.failed.exchange(true)) x.error = std::current_exception();
      }
    }, &ctx);
    if (ctx.error) std::rethrow_exception(ctx.error);
  }
  int slot_index() const;
  int threads_;
  std::shared_ptr<tbb::task_arena> arena_;  // shared by every pool of the same size
};

int hardware_threads();  // oneTBB's default concurrency (honours the process affinity mask)

// The arena every ThreadPool of `threads` (capped at hardware_threads()) uses; null for one thread.
std::shared_ptr<tbb::task_arena> shared_arena(int threads);

}  // namespace fastconv::detail
