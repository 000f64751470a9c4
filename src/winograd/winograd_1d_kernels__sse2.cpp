// The one-dimensional Winograd transforms compiled for sse2.
#include "winograd/winograd_1d_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_winograd_1d_kernels_sse2(Winograd1dKernels& k) {
  note_isa_entry(Isa::Sse2);
  fill_winograd_1d<xsimd::sse2>(k);
}

}  // namespace fastconv::detail
