// SGEMM microkernel for SSE2 (the portable fallback; no FMA: multiply then add): 6x8, and 7x8 for
// pixel-major products.
#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

UkernelInfo sgemm_ukernel_sse2() {
  note_isa_entry(Isa::Sse2);
  using A = xsimd::sse2;
  return {"sgemm_ukernel_6x8__sse2", 6, 8, sgemm_ukernel<A, 6, 2>, sgemm_ukernel<A, 6, 1, 2>,
          transpose_rows_scalar};
}

UkernelInfo sgemm_ukernel_pixels_sse2() {
  note_isa_entry(Isa::Sse2);
  using A = xsimd::sse2;
  return {"sgemm_ukernel_7x8__sse2", 7, 8, sgemm_ukernel<A, 7, 2>, sgemm_ukernel<A, 7, 1, 2>, transpose_rows_scalar,
          0, {implicit_ukernel<A, 7, 1, 2>, implicit_ukernel<A, 7, 2>}};
}

}  // namespace fastconv::detail
