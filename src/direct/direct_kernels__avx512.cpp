// Direct convolution kernels for AVX-512: 16 lanes, 24 accumulators of 32 zmm registers.
#include "direct/direct_kernels.hpp"
#include "direct/direct_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_direct_kernels_avx512(DirectKernels& k) {
  note_isa_entry(Isa::Avx512);
  fill_kernels<xsimd::avx512f, 32, 24, 4>(k, Isa::Avx512);
}

}  // namespace fastconv::detail
