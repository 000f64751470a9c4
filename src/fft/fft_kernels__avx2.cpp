// FFT frequency-domain kernels for AVX2 + FMA (8 bins per block).
#include "fft/fft_kernels.hpp"
#include "fft/fft_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

FftKernels fft_kernels_avx2() {
  note_isa_entry(Isa::Avx2);
  return make_fft_kernels<xsimd::fma3<xsimd::avx2>, 2, 2>("avx2", Isa::Avx2);
}

}  // namespace fastconv::detail
