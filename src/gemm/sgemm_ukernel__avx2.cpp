// SGEMM microkernels for AVX2 + FMA: 6x16 (12 ymm accumulators), and the AVX-512 tile shape for tests.
#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

UkernelInfo sgemm_ukernel_avx2() {
  note_isa_entry(Isa::Avx2);
  using A = xsimd::fma3<xsimd::avx2>;
  return {"sgemm_ukernel_6x16__avx2", 6, 16, sgemm_ukernel<A, 6, 2>, sgemm_ukernel<A, 6, 1, 2>};
}

UkernelInfo sgemm_ukernel_12x32_avx2() {
  note_isa_entry(Isa::Avx2);
  using A = xsimd::fma3<xsimd::avx2>;
  return {"sgemm_ukernel_12x32__avx2", 12, 32, sgemm_ukernel<A, 12, 4>, sgemm_ukernel<A, 12, 2, 4>};
}

}  // namespace fastconv::detail
