// Winograd tile transforms for SSE2 (the portable fallback; no FMA): 4 tiles per vector.
#include "winograd/winograd_transforms_impl.hpp"
#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

WinogradTransforms winograd_transforms_sse2() {
  note_isa_entry(Isa::Sse2);
  return make_winograd_transforms<xsimd::sse2>("sse2");
}

}  // namespace fastconv::detail
