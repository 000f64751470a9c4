// How every algorithm cuts its work for a plan's threads: a grid of independent blocks whose task
// index decodes into block coordinates, runs of items that differ by at most one, how many tasks
// balance the threads, and each thread's scratch carved from the workspace. Direct, im2col,
// Winograd, FFT and the backward kernels all use these, so that a change of policy is made once.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/geometry.hpp"

namespace fastconv::detail {

// Independent blocks over D dimensions, one task each. A task index is a mixed-radix number, the
// last dimension fastest: neighbouring tasks share their outer coordinates (image, group), so a
// thread's consecutive tasks reuse what those made warm.
template <std::size_t D>
class TaskGrid {
 public:
  explicit TaskGrid(const std::array<int64_t, D>& extents) : extents_(extents) {
    for (int64_t e : extents_) tasks_ = checked_mul(tasks_, e, "task grid");
  }
  int64_t tasks() const { return tasks_; }
  int64_t extent(std::size_t d) const { return extents_[d]; }
  // The coordinates of `task`, outermost first.
  std::array<int64_t, D> operator()(int64_t task) const {
    std::array<int64_t, D> at{};
    for (std::size_t d = D; d-- > 0;) {
      at[d] = task % extents_[d];
      task /= extents_[d];
    }
    return at;
  }

 private:
  std::array<int64_t, D> extents_;
  int64_t tasks_ = 1;
};

template <class... E>
TaskGrid<sizeof...(E)> task_grid(E... extents) {
  return TaskGrid<sizeof...(E)>({int64_t(extents)...});
}

// n items in `parts` runs whose sizes differ by at most one, the longer ones spread evenly (so that
// any contiguous range of runs holds its share of the items): begin of run i, for i in [0, parts].
inline int64_t run_begin(int64_t n, int64_t parts, int64_t i) { return int64_t(__int128(i) * n / parts); }
inline Range run_of(int64_t n, int64_t parts, int64_t i) { return {run_begin(n, parts, i), run_begin(n, parts, i + 1)}; }

// Past this many tasks per thread, the last, partly idle round costs at most 1/8 of the run; below
// it, a count that does not divide among the threads leaves them idle at the end (7 tasks on two
// threads run as 4 + 3).
constexpr int64_t kBalancedTasksPerThread = 8;
inline bool leaves_threads_idle(int64_t tasks, int threads) {
  return threads > 1 && tasks % threads != 0 && tasks < kBalancedTasksPerThread * threads;
}
// Tasks for `units` of equal, independent work: `per_thread` each (more balance a thread slowed by
// its neighbour; fewer cost less per task), one with one thread, never more than the units.
inline int64_t balanced_tasks(int64_t units, int threads, int64_t per_thread) {
  return std::min(units, threads > 1 ? per_thread * threads : int64_t(1));
}

// The gap between the slots of small per-thread buffers rewritten for every unit of work (the direct
// kernels' row buffers): side by side, one core's hardware prefetcher pulls in lines its neighbour
// is writing, which then bounce between the cores. On the Zen 5 (2 threads), adjacent row buffers
// of 18-21 KiB ran 1.2-1.7x the time; 16-32 KiB apart, as fast as far apart.
constexpr std::size_t kThreadScratchGap = std::size_t(32) << 10;

// Each thread's scratch: `bytes` (rounded up to the alignment) per thread slot, from `offset` in the
// workspace, consecutive slots `gap` bytes apart (rounded up likewise; none after the last).
// workspace_bytes() and execute() read the same object, so they agree.
class ThreadScratch {
 public:
  ThreadScratch() = default;
  explicit ThreadScratch(std::size_t bytes_per_thread, std::size_t offset = 0, std::size_t gap = 0)
      : bytes_(align_up(bytes_per_thread)), offset_(offset), gap_(bytes_ ? align_up(gap) : 0) {}
  std::size_t bytes_per_thread() const { return bytes_; }
  std::size_t offset() const { return offset_; }  // where the first thread's scratch begins
  // The workspace it needs with `threads` threads, from the start of the workspace.
  std::size_t total(int threads) const {
    if (threads <= 0) return offset_;
    std::size_t stride, all, end;
    if (__builtin_add_overflow(bytes_, gap_, &stride) || __builtin_mul_overflow(std::size_t(threads - 1), stride, &all) ||
        __builtin_add_overflow(all, bytes_, &all) || __builtin_add_overflow(offset_, all, &end))
      throw Error("thread scratch: the workspace size overflows size_t");
    return end;
  }
  template <class T = float>
  T* of(void* workspace, int slot) const {
    return at_offset<T>(workspace, offset_ + std::size_t(slot) * (bytes_ + gap_));  // total() checked the sum
  }

 private:
  std::size_t bytes_ = 0, offset_ = 0, gap_ = 0;
};

}  // namespace fastconv::detail
