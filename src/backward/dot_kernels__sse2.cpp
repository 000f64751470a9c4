// The backward-weights dot-product tiles compiled for sse2.
#include "backward/dot_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_dot_kernels_sse2(DotKernels& k) {
  note_isa_entry(Isa::Sse2);
  fill_dot<xsimd::sse2, 4, 3, 2, 6, 1, 8, 8>(k);
}

}  // namespace fastconv::detail
