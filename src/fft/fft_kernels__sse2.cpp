// FFT frequency-domain kernels for SSE2 (4 bins per block; no FMA: multiply then add).
#include "fft/fft_kernels.hpp"
#include "fft/fft_kernels_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

FftKernels fft_kernels_sse2() {
  note_isa_entry(Isa::Sse2);
  return make_fft_kernels<xsimd::sse2, 2, 2>("sse2", Isa::Sse2);
}

}  // namespace fastconv::detail
