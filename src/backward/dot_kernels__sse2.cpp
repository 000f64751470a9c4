// The backward-weights dot-product tiles compiled for sse2.
#include "backward/dot_kernels_impl.hpp"

namespace fastconv::detail {

void fill_dot_kernels_sse2(DotKernels& k) { fill_dot<xsimd::sse2, 4, 3>(k); }

}  // namespace fastconv::detail
