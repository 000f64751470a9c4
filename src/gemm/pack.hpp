// Packing of GEMM operands into the micro-panel layouts of the microkernel contract.
#pragma once

#include <cstdint>

#include "gemm/sgemm_kernel.hpp"

namespace fastconv::detail {

// Rows [0, m) x columns [0, k) of row-major A (leading dimension lda) into ceil(m/mr) micro-panels
// of k x mr floats, k-major; rows past m are zero. dst holds ceil(m/mr)*mr*k floats. Through the
// kernel's register transpose, 16 rows at a time (mr may be wider: backward-weights packs NR panels).
// images > 1: that many such matrices, image_stride floats apart, side by side along the depth
// (panels images*k deep; backward-weights sums over the pixels of several small images at once).
void pack_a_panels(TransposeRowsFn transpose, const float* a, int64_t lda, int64_t m, int64_t k, int mr, float* dst,
                   int64_t images = 1, int64_t image_stride = 0);

// B: SgemmKernel::pack_b, compiled per instruction set.

inline int64_t packed_a_floats(int64_t m, int64_t k, int mr) { return (m + mr - 1) / mr * mr * k; }
inline int64_t packed_b_floats(int64_t kc, int64_t n, int nr) { return (n + nr - 1) / nr * nr * kc; }

}  // namespace fastconv::detail
