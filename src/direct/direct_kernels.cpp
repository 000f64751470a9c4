// The table of direct convolution kernels per instruction set, each built on first use (only for
// an instruction set the CPU runs: the table is filled by code compiled for it).
#include "direct/direct_kernels.hpp"

namespace fastconv::detail {
namespace {

DirectKernels make(void (*fill)(DirectKernels&)) {
  DirectKernels k;
  fill(k);
  return k;
}

}  // namespace

const DirectKernels& direct_kernels(Isa isa) {
  switch (isa) {
    case Isa::Avx512: {
      static const DirectKernels k = make(fill_direct_kernels_avx512);
      return k;
    }
    case Isa::Avx2: {
      static const DirectKernels k = make(fill_direct_kernels_avx2);
      return k;
    }
    default: {
      static const DirectKernels k = make(fill_direct_kernels_sse2);
      return k;
    }
  }
}

}  // namespace fastconv::detail
