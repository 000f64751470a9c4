// Winograd tile transforms for AVX-512: 16 tiles per vector.
// GCC 12 reports the _mm512_undefined_ps() inside _mm512_permutexvar_ps as maybe uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "winograd/winograd_transforms_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

WinogradTransforms winograd_transforms_avx512() {
  note_isa_entry(Isa::Avx512);
  return make_winograd_transforms<xsimd::avx512f>("avx512");
}

}  // namespace fastconv::detail
