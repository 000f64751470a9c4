// The backward-weights dot-product tiles compiled for avx2.
#include "backward/dot_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_dot_kernels_avx2(DotKernels& k) {
  note_isa_entry(Isa::Avx2);
  fill_dot<xsimd::fma3<xsimd::avx2>, 4, 3, 2, 6, 1, 8, 8>(k);
}

}  // namespace fastconv::detail
