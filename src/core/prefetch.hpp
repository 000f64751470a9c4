// Software prefetches the optimizer keeps. GCC (10 and later, C++ at -O1 and up: -ffinite-loops)
// deletes a loop whose body is nothing but __builtin_prefetch calls, as a loop without side effects:
// the Winograd transforms' prefetch loops, among others, compiled to no instruction at all (GCC 12,
// found 2026-12-01 by disassembly). An asm volatile is a side effect. Use these for prefetch loops;
// a __builtin_prefetch among other work (the GEMM micro-kernels) stays as it is.
#pragma once

namespace fastconv::detail {

// Into every cache level (prefetcht0), for reading or for a write soon after.
inline void prefetch_l1(const void* p) { asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p))); }
// Into L2 and the levels below it (prefetcht1): data needed after what runs now.
inline void prefetch_l2(const void* p) { asm volatile("prefetcht1 %0" : : "m"(*static_cast<const char*>(p))); }

}  // namespace fastconv::detail
