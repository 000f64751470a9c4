// The backward-weights dot-product tiles compiled for avx2.
#include "backward/dot_kernels_impl.hpp"

namespace fastconv::detail {

void fill_dot_kernels_avx2(DotKernels& k) { fill_dot<xsimd::fma3<xsimd::avx2>, 4, 3>(k); }

}  // namespace fastconv::detail
