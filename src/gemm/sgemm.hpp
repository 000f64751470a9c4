// A complete threaded SGEMM on the packed microkernel: for the benches (against OpenBLAS), the tests,
// and any algorithm whose operands are plain matrices.
#pragma once

#include <cstdint>

#include "core/parallel.hpp"
#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {

// C (m x n, ldc) = (accumulate ? C : 0) + A (m x k, lda) * B (k x n, ldb) (+ bias[i] on row i).
// Row-major. Threads share out blocks of C; no reduction is split across threads, so the result is
// bitwise the same for any thread count. Allocates its packing buffers per call.
void sgemm(const SgemmKernel& kernel, const ThreadPool& pool, int64_t m, int64_t n, int64_t k, const float* a,
           int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate = false,
           const float* bias = nullptr);

}  // namespace fastconv::detail
