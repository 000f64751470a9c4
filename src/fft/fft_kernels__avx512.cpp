// FFT frequency-domain kernels for AVX-512 (16 bins per block, 32 registers: a wider tile).
#include "fft/fft_kernels.hpp"
#include "fft/fft_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

FftKernels fft_kernels_avx512() {
  note_isa_entry(Isa::Avx512);
  return make_fft_kernels<xsimd::avx512f, 4, 3>("avx512", Isa::Avx512);
}

}  // namespace fastconv::detail
