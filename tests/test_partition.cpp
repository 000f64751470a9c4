// The partition helper every algorithm splits its work with (src/core/partition.hpp): task grids
// decode to every block once, runs cover their items evenly, scratch slices are aligned and apart.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <set>

#include "core/partition.hpp"

using namespace fastconv;
using namespace fastconv::detail;

TEST_CASE("partition: a task grid decodes each task to its own block, the last extent fastest", "[partition]") {
  const auto grid = task_grid(3, 1, 4, 2);
  REQUIRE(grid.tasks() == 24);
  std::set<std::array<int64_t, 4>> seen;
  for (int64_t task = 0; task < grid.tasks(); ++task) {
    const auto [a, b, c, d] = grid(task);
    CHECK(a < 3);
    CHECK(b == 0);
    CHECK(c < 4);
    CHECK(d < 2);
    CHECK(((a * 1 + b) * 4 + c) * 2 + d == task);  // mixed radix, outermost first
    seen.insert(grid(task));
  }
  CHECK(seen.size() == 24);
  CHECK(task_grid(7).tasks() == 7);
  CHECK(task_grid(5, 0, 3).tasks() == 0);
  const int64_t big = int64_t(1) << 32;
  CHECK_THROWS_AS(task_grid(big, big, 4), Error);  // 2^66 tasks
}

TEST_CASE("partition: runs cover their items in order, sizes differing by at most one", "[partition]") {
  for (int64_t n = 0; n <= 40; ++n)
    for (int64_t parts = 1; parts <= 12; ++parts) {
      INFO(n << " items in " << parts << " runs");
      int64_t next = 0, smallest = n, largest = 0;
      for (int64_t i = 0; i < parts; ++i) {
        const Range r = run_of(n, parts, i);
        REQUIRE(r.begin == next);
        next = r.end;
        smallest = std::min(smallest, r.size()), largest = std::max(largest, r.size());
      }
      CHECK(next == n);
      CHECK(largest - smallest <= 1);
    }
  // i * n would overflow int64_t: the arithmetic is wider.
  const int64_t n = std::numeric_limits<int64_t>::max() - 5;
  CHECK(run_begin(n, 3, 3) == n);
  CHECK(run_of(n, 3, 1).size() - run_of(n, 3, 0).size() <= 1);
}

TEST_CASE("partition: task counts balance the threads", "[partition]") {
  CHECK(balanced_tasks(1000, 1, 8) == 1);
  CHECK(balanced_tasks(1000, 2, 8) == 16);
  CHECK(balanced_tasks(5, 2, 8) == 5);
  CHECK(balanced_tasks(0, 2, 8) == 0);
  CHECK(leaves_threads_idle(7, 2));    // runs as 4 + 3
  CHECK_FALSE(leaves_threads_idle(8, 2));
  CHECK_FALSE(leaves_threads_idle(7, 1));
  CHECK_FALSE(leaves_threads_idle(kBalancedTasksPerThread * 2 + 1, 2));  // the idle tail is small
}

TEST_CASE("partition: per-thread scratch is aligned, apart and its total checked", "[partition]") {
  const ThreadScratch s(100, 192);
  CHECK(s.bytes_per_thread() % kAlignment == 0);
  CHECK(s.bytes_per_thread() >= 100);
  CHECK(s.total(3) == 192 + 3 * s.bytes_per_thread());
  alignas(64) static unsigned char ws[1024];
  for (int slot = 0; slot < 3; ++slot) {
    unsigned char* p = s.of<unsigned char>(ws, slot);
    CHECK(reinterpret_cast<uintptr_t>(p) % kAlignment == 0);
    CHECK(p == ws + 192 + slot * s.bytes_per_thread());
  }
  // Slots apart by a gap (rounded up to the alignment), none after the last.
  const ThreadScratch gapped(100, 64, 1000);
  CHECK(gapped.total(1) == 64 + gapped.bytes_per_thread());
  CHECK(gapped.total(3) == 64 + 3 * gapped.bytes_per_thread() + 2 * 1024);
  alignas(64) static unsigned char gapped_ws[4096];  // total(3) fits: the slots' addresses stay inside it
  REQUIRE(gapped.total(3) <= sizeof gapped_ws);
  for (int slot = 0; slot < 3; ++slot)
    CHECK(gapped.of<unsigned char>(gapped_ws, slot) == gapped_ws + 64 + slot * (gapped.bytes_per_thread() + 1024));
  CHECK(ThreadScratch(0, 64, 1000).total(3) == 64);  // no scratch, no gap
  CHECK_THROWS_AS(ThreadScratch(std::size_t(1) << 61, 0, std::size_t(1) << 61).total(5), Error);
  CHECK(ThreadScratch().total(8) == 0);
  CHECK_THROWS_AS(ThreadScratch(std::size_t(1) << 62).total(8), Error);
  CHECK_THROWS_AS(ThreadScratch(64, std::numeric_limits<std::size_t>::max() - 10).total(1), Error);
}
