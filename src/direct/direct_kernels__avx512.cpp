// Direct convolution kernels for AVX-512: 16 lanes, 24 accumulators of 32 zmm registers.
// GCC 12 reports the _mm512_undefined_ps() inside its own intrinsics (reached from xsimd::exp in the
// SiLU epilogue) as maybe uninitialized.
#if !defined(__clang__)  // a GCC warning clang does not know
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "direct/direct_kernels.hpp"
#include "direct/direct_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_direct_kernels_avx512(DirectKernels& k) {
  note_isa_entry(Isa::Avx512);
  fill_kernels<xsimd::avx512f, 32, 24, 4>(k, Isa::Avx512);
}

}  // namespace fastconv::detail
