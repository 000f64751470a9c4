// The FFT kernels of each instruction set, picked once per plan.
#include "fft/fft_kernels.hpp"

namespace fastconv::detail {

const FftKernels& fft_kernels(Isa isa) {
  static const FftKernels kernels[] = {fft_kernels_sse2(), fft_kernels_avx2(), fft_kernels_avx512()};
  return kernels[static_cast<int>(isa)];
}

}  // namespace fastconv::detail
