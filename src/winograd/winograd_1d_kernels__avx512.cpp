// The one-dimensional Winograd transforms compiled for avx512.
// GCC 12 reports the _mm512_undefined_ps() inside its own intrinsics as maybe uninitialized.
#if !defined(__clang__)  // a GCC warning clang does not know
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "winograd/winograd_1d_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_winograd_1d_kernels_avx512(Winograd1dKernels& k) {
  note_isa_entry(Isa::Avx512);
  fill_winograd_1d<xsimd::avx512f>(k);
}

}  // namespace fastconv::detail
