// Winograd tile transforms for AVX-512: 16 tiles per vector.
// GCC 12 reports the _mm512_undefined_ps() inside _mm512_permutexvar_ps as maybe uninitialized.
#if !defined(__clang__)  // a GCC warning clang does not know
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "winograd/winograd_transforms_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

WinogradTransforms winograd_transforms_avx512() {
  note_isa_entry(Isa::Avx512);
  return make_winograd_transforms<xsimd::avx512f>("avx512");
}

}  // namespace fastconv::detail
