// The table of one-dimensional Winograd transforms per instruction set (core/isa_dispatch.hpp:
// built on first use, only for an instruction set the CPU runs).
#include "winograd/winograd_1d_kernels.hpp"

#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

const Winograd1dKernels& winograd_1d_kernels(Isa isa) {
  return isa_filled_table<Winograd1dKernels, fill_winograd_1d_kernels_sse2, fill_winograd_1d_kernels_avx2,
                          fill_winograd_1d_kernels_avx512>(isa, "winograd 1d");
}

}  // namespace fastconv::detail
