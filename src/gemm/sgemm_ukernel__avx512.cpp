// SGEMM microkernel for AVX-512: 12x32 (24 zmm accumulators).
#include "gemm/sgemm_kernel.hpp"
#include "gemm/sgemm_ukernel_impl.hpp"

namespace fastconv::detail {

UkernelInfo sgemm_ukernel_avx512() {
  return {"sgemm_ukernel_12x32__avx512", 12, 32, sgemm_ukernel<xsimd::avx512f, 12, 2>};
}

}  // namespace fastconv::detail
