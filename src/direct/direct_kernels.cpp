// The table of direct convolution kernels per instruction set (core/isa_dispatch.hpp: built on first
// use, only for an instruction set the CPU runs).
#include "direct/direct_kernels.hpp"

#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

const DirectKernels& direct_kernels(Isa isa) {
  return isa_filled_table<DirectKernels, fill_direct_kernels_sse2, fill_direct_kernels_avx2,
                          fill_direct_kernels_avx512>(isa, "direct");
}

}  // namespace fastconv::detail
