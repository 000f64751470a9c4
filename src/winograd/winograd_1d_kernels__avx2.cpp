// The one-dimensional Winograd transforms compiled for avx2.
#include "winograd/winograd_1d_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_winograd_1d_kernels_avx2(Winograd1dKernels& k) {
  note_isa_entry(Isa::Avx2);
  fill_winograd_1d<xsimd::fma3<xsimd::avx2>>(k);
}

}  // namespace fastconv::detail
