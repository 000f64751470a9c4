// For comparisons against oneDNN in one process: two thread pools (oneTBB's and OpenMP's) share
// the cores, and the OS sometimes wakes one pool's worker on the core another thread is using,
// halving that run's speed. Pinning every runtime's threads one per core, the same way for both
// libraries (like taskset), removes that artifact of the benchmark.
#pragma once

namespace fastconv::tools {

// Pins the calling (main) thread to the first allowed CPU and the workers of fastconv's arena for
// `threads` to the next ones; returns false if the OS refused.
bool pin_fastconv_threads(int threads);
// The CPU a thread of index i (0: the calling thread) is pinned to: the i-th allowed CPU, cyclic.
bool pin_current_thread(int index);
// Every CPU the process was allowed at start, for the calling thread (and the threads it starts).
bool unpin_current_thread();

}  // namespace fastconv::tools
