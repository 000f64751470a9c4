// Direct convolution kernels for AVX2 + FMA: 8 lanes, 12 accumulators of 16 ymm registers.
#include "direct/direct_kernels.hpp"
#include "direct/direct_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_direct_kernels_avx2(DirectKernels& k) {
  note_isa_entry(Isa::Avx2);
  fill_kernels<xsimd::fma3<xsimd::avx2>, 16, 12, 3>(k, Isa::Avx2);
}

}  // namespace fastconv::detail
