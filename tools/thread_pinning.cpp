#include "thread_pinning.hpp"

#include <pthread.h>
#include <sched.h>

#include <tbb/task_scheduler_observer.h>

#include <memory>
#include <vector>

#include "core/parallel.hpp"

namespace fastconv::tools {
namespace {

// The CPUs the process was allowed before any pinning: read once, by the first pin (a thread's own
// affinity after that is its pin, not the process's).
const std::vector<int>& allowed_cpus() {
  static const std::vector<int> cpus = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> v;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) v.push_back(c);
    return v;
  }();
  return cpus;
}

class PinningObserver : public tbb::task_scheduler_observer {
 public:
  explicit PinningObserver(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) { observe(true); }
  void on_scheduler_entry(bool) override { pin_current_thread(tbb::this_task_arena::current_thread_index()); }
};

}  // namespace

bool pin_current_thread(int index) {
  const std::vector<int>& cpus = allowed_cpus();
  if (cpus.empty() || index < 0) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[std::size_t(index) % cpus.size()], &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

bool unpin_current_thread() {
  const std::vector<int>& cpus = allowed_cpus();
  if (cpus.empty()) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

bool pin_fastconv_threads(int threads) {
  allowed_cpus();  // before anything is pinned
  // The arena first: oneTBB sizes it from the CPUs the calling thread may use, which pinning the
  // calling thread reduces to one.
  if (auto arena = detail::shared_arena(threads)) {
    static std::vector<std::unique_ptr<PinningObserver>> observers;  // live as long as the process
    observers.push_back(std::make_unique<PinningObserver>(*arena));
  }
  return pin_current_thread(0);
}

}  // namespace fastconv::tools
