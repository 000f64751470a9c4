// SGEMM microkernel for SSE2 (the portable fallback; no FMA: multiply then add): 6x8, and 7x8 for
// pixel-major products.
#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

UkernelInfo sgemm_ukernel_sse2() {
  note_isa_entry(Isa::Sse2);
  using A = xsimd::sse2;
  return tile_info<A, 6, 2, 1>("sgemm_ukernel_6x8__sse2", transpose_rows_scalar);
}

UkernelInfo sgemm_ukernel_pixels_sse2() {
  note_isa_entry(Isa::Sse2);
  using A = xsimd::sse2;
  return implicit_tile_info<A, 7, 2, 1>("sgemm_ukernel_7x8__sse2", transpose_rows_scalar);
}

}  // namespace fastconv::detail
