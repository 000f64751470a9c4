// SGEMM microkernel for AVX-512: 12x32 (24 zmm accumulators).
#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

UkernelInfo sgemm_ukernel_avx512() {
  note_isa_entry(Isa::Avx512);
  using A = xsimd::avx512f;
  return {"sgemm_ukernel_12x32__avx512", 12, 32, sgemm_ukernel<A, 12, 2>, sgemm_ukernel<A, 12, 1, 2>};
}

}  // namespace fastconv::detail
