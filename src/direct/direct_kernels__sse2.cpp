// Direct convolution kernels for SSE2 (no FMA: multiply then add): 4 lanes, 8 accumulators.
#include "direct/direct_kernels.hpp"
#include "direct/direct_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void fill_direct_kernels_sse2(DirectKernels& k) {
  note_isa_entry(Isa::Sse2);
  fill_kernels<xsimd::sse2, 16, 8, 3>(k, Isa::Sse2);
}

}  // namespace fastconv::detail
