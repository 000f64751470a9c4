#include "gemm/sgemm.hpp"

#include <algorithm>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/partition.hpp"
#include "gemm/macro_kernel.hpp"
#include "gemm/pack.hpp"

namespace fastconv::detail {

void sgemm(const SgemmKernel& kernel, const ThreadPool& pool, int64_t m, int64_t n, int64_t k, const float* a,
           int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, const float* bias) {
  if (m <= 0 || n <= 0) return;
  const GemmBlocking& bl = kernel.blocking;
  if (k <= 0) {  // C = (accumulate ? C : 0) + bias
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + (bias ? bias[i] : 0.0f);
    return;
  }
  // Tasks: blocks of C, NC columns wide and split by rows, one per thread: each packs its own B
  // block and its own A blocks. (Sharing one packed B between threads costs a fork-join per KC
  // block and an uneven split of the row blocks; measured slower here on two cores.)
  const int64_t nc = std::min(bl.nc, round_up(n, bl.nr));
  const int64_t n_blocks = ceil_div(n, nc);
  const int64_t m_blocks = std::max<int64_t>(1, std::min(ceil_div(m, bl.mr), ceil_div(pool.threads(), n_blocks)));
  const int64_t m_step = round_up(ceil_div(m, m_blocks), bl.mr);
  const int64_t kc_max = std::min(bl.kc, k);
  const std::size_t a_floats = std::size_t(packed_a_floats(bl.mc, kc_max, bl.mr));
  const std::size_t b_floats = std::size_t(packed_b_floats(kc_max, nc, bl.nr));
  const ThreadScratch scratch(align_up(a_floats * sizeof(float)) + b_floats * sizeof(float));
  AlignedBuffer<unsigned char> workspace(scratch.total(pool.threads()));

  const TaskGrid<2> tasks = task_grid(ceil_div(m, m_step), n_blocks);
  pool.for_each(tasks.tasks(), [&](int64_t task, int slot) {
    const auto [mb, nb] = tasks(task);
    const int64_t i_begin = mb * m_step, j0 = nb * nc;
    const int64_t i_end = std::min(m, i_begin + m_step), cols = std::min(nc, n - j0);
    float* a_pack = scratch.of<float>(workspace.data(), slot);
    float* b_pack = at_offset<float>(a_pack, align_up(a_floats * sizeof(float)));
    for (int64_t p0 = 0; p0 < k; p0 += bl.kc) {
      const int64_t kc = std::min(bl.kc, k - p0);
      const bool last = p0 + kc == k;
      kernel.pack_b(b + p0 * ldb + j0, ldb, kc, cols, bl.nr, b_pack);
      for (int64_t i0 = i_begin; i0 < i_end; i0 += bl.mc) {
        const int64_t rows = std::min(bl.mc, i_end - i0);
        pack_a_panels(kernel.transpose_rows, a + i0 * lda + p0, lda, rows, kc, bl.mr, a_pack);
        gemm_macro_kernel(kernel, rows, cols, kc, a_pack, kc * bl.mr, b_pack, kc * bl.nr, c + i0 * ldc + j0, ldc,
                          accumulate || p0 > 0, last && bias ? bias + i0 : nullptr);
      }
    }
  });
}

}  // namespace fastconv::detail
