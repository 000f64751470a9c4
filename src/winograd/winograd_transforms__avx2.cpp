// Winograd tile transforms for AVX2 + FMA: 8 tiles per vector.
#include "winograd/winograd_transforms_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

WinogradTransforms winograd_transforms_avx2() {
  note_isa_entry(Isa::Avx2);
  return make_winograd_transforms<xsimd::fma3<xsimd::avx2>>("avx2");
}

}  // namespace fastconv::detail
