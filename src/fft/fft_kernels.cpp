// The FFT kernels of each instruction set, picked once per plan.
#include "fft/fft_kernels.hpp"

#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

const FftKernels& fft_kernels(Isa isa) {
  return isa_table<FftKernels, fft_kernels_sse2, fft_kernels_avx2, fft_kernels_avx512>(isa, "fft");
}

}  // namespace fastconv::detail
