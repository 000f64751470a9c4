// The one-dimensional Winograd transforms compiled for avx512.
#include "winograd/winograd_1d_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_winograd_1d_kernels_avx512(Winograd1dKernels& k) {
  note_isa_entry(Isa::Avx512);
  fill_winograd_1d<xsimd::avx512f>(k);
}

}  // namespace fastconv::detail
