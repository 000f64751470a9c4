// The table of direct convolution kernels per instruction set (core/isa_dispatch.hpp: built on first
// use, only for an instruction set the CPU runs).
#include "direct/direct_kernels.hpp"

#include "core/isa_dispatch.hpp"

namespace fastconv::detail {
namespace {

template <void (*Fill)(DirectKernels&)>
DirectKernels build() {
  DirectKernels k;
  Fill(k);
  return k;
}

}  // namespace

const DirectKernels& direct_kernels(Isa isa) {
  return isa_table<DirectKernels, build<fill_direct_kernels_sse2>, build<fill_direct_kernels_avx2>,
                   build<fill_direct_kernels_avx512>>(isa, "direct");
}

}  // namespace fastconv::detail
