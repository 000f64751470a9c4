// The backward-weights dot-product tiles compiled for avx512.
#include "backward/dot_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_dot_kernels_avx512(DotKernels& k) {
  note_isa_entry(Isa::Avx512);
  fill_dot<xsimd::avx512f, 8, 3, 4, 6, 2, 8, 8>(k);
}

}  // namespace fastconv::detail
